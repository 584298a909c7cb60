//! [`Scope`]: the owner a request acts for, and what it may see.

use axum::extract::FromRequestParts;
use http::StatusCode;
use http::request::Parts;

use super::AdminState;
use crate::Problem;

/// The owner a request acts for: every owner (no resolver: an operator's API), or one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every owner's objects.
    All,
    /// This owner's objects only.
    Owner(String),
}

impl Scope {
    /// Whether an object of `owner` is visible: another owner's is answered as not found.
    pub(crate) fn sees(&self, owner: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Owner(mine) => owner == Some(mine.as_str()),
        }
    }

    /// The owner filter of a list query: the scope's, else what the request asked for.
    pub(crate) fn owner_filter(&self, asked: Option<String>) -> Option<String> {
        match self {
            Scope::All => asked,
            Scope::Owner(mine) => Some(mine.clone()),
        }
    }

    /// The owner of an object created in this scope; `asked` must agree with it.
    pub(crate) fn owner_of_new(&self, asked: Option<String>) -> Result<Option<String>, Problem> {
        match (self, asked) {
            (Scope::All, asked) => Ok(asked),
            (Scope::Owner(mine), None) => Ok(Some(mine.clone())),
            (Scope::Owner(mine), Some(asked)) if &asked == mine => Ok(Some(asked)),
            (Scope::Owner(_), Some(_)) => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "owner_mismatch",
                "Owner mismatch",
                "`owner` names another owner than the one this request acts for; leave it out",
            )),
        }
    }
}

impl FromRequestParts<AdminState> for Scope {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, Problem> {
        let Some(resolve) = &state.owner else {
            return Ok(Scope::All);
        };
        match resolve(parts) {
            Some(owner) => Ok(Scope::Owner(owner)),
            None => Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "owner_required",
                "Owner required",
                "this request carries no owner for the management API to act for",
            )),
        }
    }
}
