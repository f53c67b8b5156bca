//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client acting for itself.

use shared::clients::{AuthMethod, CITIZEN_SCOPES, Client, is_scope_token};

use super::TokenError;

/// The scope granted to `client` for `requested` (space-separated; absent = every scope the
/// client may get this way), in the registry's order. Scopes naming a citizen's data are never
/// granted without a citizen (`invalid_scope`); a client with nothing else may not use the grant.
pub fn grant(client: &Client, requested: Option<&str>) -> Result<Vec<String>, TokenError> {
    if client.token_endpoint_auth_method == AuthMethod::None {
        return Err(TokenError::UnauthorizedClient("a public client cannot use client_credentials"));
    }
    let grantable: Vec<&String> = client.allowed_scopes.iter().filter(|s| !CITIZEN_SCOPES.contains(&s.as_str())).collect();
    if grantable.is_empty() {
        return Err(TokenError::UnauthorizedClient("the client has no scope it may use without a citizen"));
    }
    let Some(requested) = requested else {
        return Ok(grantable.into_iter().cloned().collect());
    };
    let tokens: Vec<&str> = requested.split(' ').collect();
    if tokens.iter().any(|t| !is_scope_token(t)) {
        return Err(TokenError::InvalidScope("the scope is malformed"));
    }
    if tokens.iter().any(|t| !grantable.iter().any(|g| g == t)) {
        return Err(TokenError::InvalidScope("the scope exceeds what the client may get with client_credentials"));
    }
    Ok(grantable.into_iter().filter(|g| tokens.contains(&g.as_str())).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::clients::Registry;

    fn registry() -> Registry {
        let hash = "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$3yNuYoQ+N6KnMSvZKMMmYXlRcw1q6d2SvDyJKJSOqDk";
        Registry::from_json(
            &serde_json::json!({"clients": [
                {"client_id": "mvd", "name": "МВД", "kind": "agency", "allowed_scopes": ["agency"], "token_endpoint_auth_method": "client_secret_basic", "client_secret_hash": hash, "subject_type": "public"},
                {"client_id": "bank", "name": "Банк", "kind": "partner", "redirect_uris": ["https://bank.example/cb"], "allowed_scopes": ["openid", "fullname", "payments:read", "payments:write"],
                 "token_endpoint_auth_method": "client_secret_post", "client_secret_hash": hash, "subject_type": "pairwise"},
                {"client_id": "portal", "name": "Портал", "kind": "partner", "redirect_uris": ["https://portal.example/cb"], "allowed_scopes": ["openid", "email"],
                 "token_endpoint_auth_method": "client_secret_post", "client_secret_hash": hash, "subject_type": "pairwise"},
                {"client_id": "app", "name": "Приложение", "kind": "partner", "redirect_uris": ["http://127.0.0.1:8400/cb"], "allowed_scopes": ["openid", "partner:api"],
                 "token_endpoint_auth_method": "none", "subject_type": "pairwise"},
            ]})
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn the_default_scope_is_every_scope_the_client_may_get_without_a_citizen() {
        let r = registry();
        assert_eq!(grant(r.get("mvd").unwrap(), None).unwrap(), ["agency"]);
        assert_eq!(grant(r.get("bank").unwrap(), None).unwrap(), ["payments:read", "payments:write"]);
        assert_eq!(grant(r.get("bank").unwrap(), Some("payments:write payments:read payments:write")).unwrap(), ["payments:read", "payments:write"]);
    }

    #[test]
    fn scopes_beyond_the_registration_or_naming_citizen_data_are_invalid() {
        let r = registry();
        for scope in ["openid", "agency payments:read", "payments:read fullname", "admin", "payments:read  payments:write", " payments:read", "пример", "a\"b"]
        {
            assert_eq!(grant(r.get("bank").unwrap(), Some(scope)).unwrap_err().code(), "invalid_scope", "{scope:?}");
        }
        assert_eq!(grant(r.get("mvd").unwrap(), Some("payments:read")).unwrap_err().code(), "invalid_scope");
    }

    #[test]
    fn public_clients_and_sign_in_only_partners_may_not_use_the_grant() {
        let r = registry();
        assert_eq!(grant(r.get("app").unwrap(), None).unwrap_err().code(), "unauthorized_client");
        assert_eq!(grant(r.get("portal").unwrap(), None).unwrap_err().code(), "unauthorized_client");
    }
}
