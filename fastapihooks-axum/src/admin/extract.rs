//! The management API's extractors: axum's `Json` and `Query`, whose rejections answer as
//! problems (`400 invalid_request`, saying what is wrong) like every other error of the API.
//! A JSON body must say `Content-Type: application/json`, so a cross-site form cannot post one.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Query, Request};
use http::header;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::problems::invalid;
use crate::Problem;

/// A JSON request body.
#[derive(Debug)]
pub(crate) struct Body<T>(pub(crate) T);

fn json_problem(rejection: JsonRejection) -> Problem {
    invalid(format!("the JSON body: {}", rejection.body_text()))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        <Json<T> as FromRequest<S>>::from_request(request, state)
            .await
            .map(|Json(value)| Body(value))
            .map_err(json_problem)
    }
}

/// An optional body: a request without a `Content-Type` has none.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Problem> {
        if !request.headers().contains_key(header::CONTENT_TYPE) {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(request, state)
            .await
            .map(Some)
    }
}

/// A query string.
#[derive(Debug)]
pub(crate) struct Params<T>(pub(crate) T);

fn query_problem(rejection: QueryRejection) -> Problem {
    invalid(format!("the query string: {}", rejection.body_text()))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Params(value))
            .map_err(query_problem)
    }
}
