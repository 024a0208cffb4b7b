//! The JSON shape of one registration in `GET /api/registrations` (CONTRACT.md §4),
//! shared by the server and by `trunkline status`, so the two cannot drift apart.

use serde::{Deserialize, Serialize};
use sip_core::RegistrationView;

/// One registration as the admin API shows it: camelCase keys, `null` where unknown.
///
/// Built only from [`RegistrationView`], which holds no password: there is no field
/// here a secret could travel in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationJson {
    /// The provider's stable id.
    pub id: String,
    /// The provider's display name.
    #[serde(default)]
    pub name: String,
    /// `pending`, `registered` or `failed`.
    pub status: String,
    /// Why the registration is not registered, when it is not.
    pub error: Option<String>,
    /// Last successful registration, RFC 3339 UTC.
    pub last_register_at: Option<String>,
    /// When the granted binding lapses, RFC 3339 UTC.
    pub expires_at: Option<String>,
    /// When the next REGISTER is due, RFC 3339 UTC.
    pub next_refresh_at: Option<String>,
    /// `host:port` of the registrar.
    #[serde(default)]
    pub registrar: String,
    /// `udp`, `tcp` or `tls` (CONTRACT.md §7).
    #[serde(default)]
    pub transport: String,
    /// The address in use after resolution, `ip:port`, once resolved.
    #[serde(default)]
    pub target: Option<String>,
}

impl From<&RegistrationView> for RegistrationJson {
    fn from(v: &RegistrationView) -> Self {
        Self {
            id: v.id.clone(),
            name: v.name.clone(),
            status: v.status.as_str().to_owned(),
            error: v.error.clone(),
            last_register_at: v.last_register_at.clone(),
            expires_at: v.expires_at.clone(),
            next_refresh_at: v.next_refresh_at.clone(),
            registrar: v.registrar.clone(),
            transport: v.transport.name().to_owned(),
            target: v.target.map(|t| t.to_string()),
        }
    }
}

/// One call in progress as `GET /api/calls` shows it (CONTRACT.md §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallJson {
    /// The call's id, for `DELETE /api/calls/{id}` (a string, as registration ids are).
    pub id: String,
    /// The provider it came from, when attributed to one.
    pub provider_id: Option<String>,
    /// The dialed number.
    pub did: String,
    /// The caller's number.
    pub caller: Option<String>,
    /// The destination URI, once routed.
    pub destination: Option<String>,
    /// `routing`, `ringing`, `answered` or `ending`.
    pub state: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub answered_at: Option<String>,
}

impl From<&sip_core::CallView> for CallJson {
    fn from(v: &sip_core::CallView) -> Self {
        Self {
            id: v.id.to_string(),
            provider_id: v.provider_id.clone(),
            did: v.did.clone(),
            caller: v.caller.clone(),
            destination: v.destination.clone(),
            state: v.state.to_owned(),
            started_at: v.started_at.clone(),
            answered_at: v.answered_at.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use sip_core::RegisterStatus;

    fn view(status: RegisterStatus) -> RegistrationView {
        RegistrationView {
            id: "p-alice".into(),
            name: "Alice's trunk".into(),
            status,
            error: None,
            last_register_at: None,
            expires_at: None,
            next_refresh_at: None,
            registrar: "127.0.0.1:5090".into(),
            transport: sip_core::Transport::Udp,
            target: None,
        }
    }

    #[test]
    fn keys_are_the_contracts_in_camel_case_with_nulls_where_unknown() {
        let json =
            serde_json::to_value(RegistrationJson::from(&view(RegisterStatus::Pending))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "p-alice",
                "name": "Alice's trunk",
                "status": "pending",
                "error": null,
                "lastRegisterAt": null,
                "expiresAt": null,
                "nextRefreshAt": null,
                "registrar": "127.0.0.1:5090",
                // CONTRACT.md §7.
                "transport": "udp",
                "target": null,
            })
        );
        let mut tls = view(RegisterStatus::Registered);
        tls.transport = sip_core::Transport::Tls;
        tls.target = Some("192.0.2.7:5061".parse().unwrap());
        let json = serde_json::to_value(RegistrationJson::from(&tls)).unwrap();
        assert_eq!(json["transport"], "tls");
        assert_eq!(json["target"], "192.0.2.7:5061");
    }

    #[test]
    fn every_field_of_the_view_is_carried_over() {
        let mut v = view(RegisterStatus::Registered);
        v.error = Some("was: 408 timeout".into());
        v.last_register_at = Some("2026-01-02T03:04:05Z".into());
        v.expires_at = Some("2026-01-02T04:04:05Z".into());
        v.next_refresh_at = Some("2026-01-02T03:52:05Z".into());
        let json = serde_json::to_value(RegistrationJson::from(&v)).unwrap();
        assert_eq!(json["status"], "registered");
        assert_eq!(json["error"], "was: 408 timeout");
        assert_eq!(json["lastRegisterAt"], "2026-01-02T03:04:05Z");
        assert_eq!(json["expiresAt"], "2026-01-02T04:04:05Z");
        assert_eq!(json["nextRefreshAt"], "2026-01-02T03:52:05Z");
        // What the server writes, the client reads back unchanged.
        let back: RegistrationJson = serde_json::from_value(json).unwrap();
        assert_eq!(back, RegistrationJson::from(&v));
        assert_eq!(
            RegistrationJson::from(&view(RegisterStatus::Failed)).status,
            "failed"
        );
    }

    #[test]
    fn the_client_tolerates_missing_optional_and_unknown_fields() {
        let back: RegistrationJson =
            serde_json::from_str(r#"{"id":"x","status":"pending","later":1}"#).unwrap();
        assert_eq!(back.id, "x");
        assert_eq!(back.error, None);
        assert_eq!(back.registrar, "");
    }
}
