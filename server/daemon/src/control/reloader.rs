//! The control API's reload and runtime-reservation requests, answered by the
//! [`Reloader`]: the same path SIGHUP takes, so the API and the signal cannot disagree.

use serde_json::{Map, Value, json};

use super::{ApiError, ControlHooks, StatusCode};
use crate::reload::{ReloadError, Reloader, ReservationClient, RuntimeReservation};
use crate::runtime::log_reload;

impl ControlHooks for Reloader {
    fn reload(&self) -> Result<Value, ApiError> {
        let result = Reloader::reload(self);
        log_reload(&result, "control API");
        let report = result.map_err(refused)?;
        Ok(json!({ "reloaded": report }))
    }

    fn reservations(&self) -> Result<Value, ApiError> {
        let reservations = self.runtime_reservations().map_err(refused)?;
        Ok(json!({
            "file": self.reservations_path().display().to_string(),
            "reservations": reservations,
        }))
    }

    fn add_reservation(&self, reservation: Value) -> Result<Value, ApiError> {
        let reservation: RuntimeReservation =
            serde_json::from_value(reservation).map_err(|error| body_error(&error))?;
        let result = Reloader::add_reservation(self, reservation.clone());
        log_reload(&result, "control API: reservation added");
        let report = result.map_err(refused)?;
        Ok(json!({ "added": reservation, "reloaded": report }))
    }

    fn remove_reservation(&self, reservation: Value) -> Result<Value, ApiError> {
        let client: ReservationClient = serde_json::from_value(client_fields(reservation)?)
            .map_err(|error| body_error(&error))?;
        let result = Reloader::remove_reservation(self, &client);
        log_reload(&result, "control API: reservation removed");
        let report = result.map_err(refused)?;
        Ok(json!({ "removed": client, "reloaded": report }))
    }
}

/// The client keys of a removal. Query pairs arrive as strings, so `hw-type` is read from
/// either form; `link` names where the reservation applies, not which client it is for, and
/// is left out of the match, except for an Interface-Id (unique per link).
fn client_fields(reservation: Value) -> Result<Value, ApiError> {
    let Value::Object(fields) = reservation else {
        return Err(ApiError::invalid(
            "reservation",
            "expected an object with duid, or hw-address (and hw-type)",
        ));
    };
    let by_interface_id = fields.contains_key("interface-id");
    let mut client = Map::new();
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("link", _) if !by_interface_id => {}
            ("hw-type", Value::String(text)) => {
                let hw_type: u16 = text.parse().map_err(|_| {
                    ApiError::invalid(
                        "hw-type",
                        format!("{text:?} is not a number from 0 to 65535"),
                    )
                })?;
                client.insert(key, Value::from(hw_type));
            }
            (_, value) => {
                client.insert(key, value);
            }
        }
    }
    Ok(Value::Object(client))
}

/// A request body serde could not read, naming the key when serde does.
fn body_error(error: &serde_json::Error) -> ApiError {
    let message = error.to_string();
    let field = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("unknown field") || message.starts_with("missing field"))
        .unwrap_or("reservation")
        .to_owned();
    ApiError::invalid(&field, message)
}

/// A refused reload or reservation change: 409 when only a restart can apply it, 422 when
/// the file (or the reservation) is invalid; the message names file, field and problem.
fn refused(error: ReloadError) -> ApiError {
    let status = if error.restart_required.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::CONFLICT
    };
    let field = if error.field.is_empty() {
        "file".to_owned()
    } else {
        error.field.clone()
    };
    ApiError {
        status,
        error: error.to_string(),
        field: Some(field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_keys_read_hw_type_from_a_query_string_and_ignore_link() {
        let value = client_fields(
            json!({"hw-address": "00:11:22:33:44:55", "hw-type": "1", "link": "lan"}),
        )
        .unwrap();
        let client: ReservationClient = serde_json::from_value(value).unwrap();
        assert_eq!(client.hw_type, Some(1));
        assert_eq!(client.hw_address.as_deref(), Some("00:11:22:33:44:55"));
        let error = client_fields(json!({"hw-type": "x"})).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("hw-type"));
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn refusals_name_the_file_and_field_and_say_when_a_restart_is_needed() {
        let invalid = refused(ReloadError {
            file: "/etc/xdhcp6/xdhcp6.toml".into(),
            field: "link[1].pool[0].range".into(),
            problem: "not inside the prefix".into(),
            restart_required: Vec::new(),
        });
        assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(invalid.field.as_deref(), Some("link[1].pool[0].range"));
        assert!(
            invalid
                .error
                .starts_with("/etc/xdhcp6/xdhcp6.toml: link[1].pool[0].range: ")
        );
        let restart = refused(ReloadError {
            file: "/etc/xdhcp6/xdhcp6.toml".into(),
            field: String::new(),
            problem: "restart required".into(),
            restart_required: vec!["server.salt changed".into()],
        });
        assert_eq!(restart.status, StatusCode::CONFLICT);
        assert!(restart.error.contains("server.salt changed"));
    }

    #[test]
    fn removal_by_interface_id_keeps_its_link() {
        let value = client_fields(json!({"interface-id": "cm-port-7", "link": "cmts-1"})).unwrap();
        let client: ReservationClient = serde_json::from_value(value).unwrap();
        assert_eq!(client.link.as_deref(), Some("cmts-1"));
        let reserved: RuntimeReservation = serde_json::from_value(
            json!({"interface-id": "cm-port-7", "link": "cmts-1", "address": "2001:db8::7"}),
        )
        .unwrap();
        assert!(client.matches(&reserved));
        let elsewhere: RuntimeReservation = serde_json::from_value(
            json!({"interface-id": "cm-port-7", "link": "cmts-2", "address": "2001:db8::7"}),
        )
        .unwrap();
        assert!(!client.matches(&elsewhere));
    }

    #[test]
    fn unknown_keys_are_named() {
        let error =
            serde_json::from_value::<RuntimeReservation>(json!({"duid": "00:01", "adress": "x"}))
                .unwrap_err();
        assert_eq!(body_error(&error).field.as_deref(), Some("adress"));
    }
}
