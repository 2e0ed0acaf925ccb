//! The one error shape of the control API: `{"error": "...", "field": "..."}` with a status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::model::ErrorBody;

/// A request the API refuses or could not carry out: the status, the message and the
/// request field it is about (a query parameter, a JSON key, a header), if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What is wrong, naming the field and the value (`address: "2001:db8::zz" is not an
    /// IPv6 address`).
    pub error: String,
    /// The field the error is about.
    pub field: Option<String>,
}

impl ApiError {
    /// An error about no field in particular.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            field: None,
        }
    }

    /// 400: `field` holds a value the request cannot have; the message starts with the field.
    pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::about(StatusCode::BAD_REQUEST, field, problem)
    }

    /// An error with `status` about `field`; the message starts with the field's name.
    pub fn about(status: StatusCode, field: &str, problem: impl std::fmt::Display) -> Self {
        Self {
            status,
            error: format!("{field}: {problem}"),
            field: Some(field.to_owned()),
        }
    }

    /// 404: nothing matches `field`.
    pub fn not_found(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::about(StatusCode::NOT_FOUND, field, problem)
    }

    /// 500: the server could not carry out a valid request.
    pub fn internal(problem: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, problem)
    }

    /// 401 for the TCP listener's bearer token.
    pub fn unauthorized() -> Self {
        Self::about(
            StatusCode::UNAUTHORIZED,
            "authorization",
            "a valid \"Authorization: Bearer TOKEN\" header is required on TCP",
        )
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.error.clone(),
            field: self.field.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.error, self.status)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut response = (self.status, Json(self.body())).into_response();
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"xdhcp6\""),
            );
        }
        response
    }
}
