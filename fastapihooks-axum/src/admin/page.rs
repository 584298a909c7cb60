//! [`Page`]: one page of a list, with the cursor of the next.

use serde::Serialize;

use crate::Problem;

/// The largest page a list answers.
pub(crate) const MAX_LIMIT: usize = 500;

/// One page of a list: `data`, and `next` — the cursor of the following page (pass it as
/// `before`, or `after` for subscriptions), absent on the last page.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The objects of this page.
    pub data: Vec<T>,
    /// The cursor of the next page; absent when this one is the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// The page of `items`, read with a page size of `limit + 1`: when more than `limit` came,
    /// the extra one is dropped and the page says where the next starts (`cursor` of its last
    /// object).
    pub(crate) fn of<U>(
        mut items: Vec<U>,
        limit: usize,
        view: impl Fn(U) -> T,
        cursor: impl Fn(&U) -> String,
    ) -> Self {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor)
        } else {
            None
        };
        Self {
            data: items.into_iter().map(view).collect(),
            next,
        }
    }
}

/// The page size asked for (default 50), refused outside 1..=[`MAX_LIMIT`].
pub(crate) fn limit(asked: Option<usize>) -> Result<usize, Problem> {
    match asked.unwrap_or(50) {
        n @ 1..=MAX_LIMIT => Ok(n),
        n => Err(super::problems::invalid(format!(
            "`limit` is {n}: a page holds 1 to {MAX_LIMIT} objects"
        ))),
    }
}
