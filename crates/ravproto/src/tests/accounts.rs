//! The admin routes' bodies: roles, a created token, a listing without secrets, frozen as JSON.

use super::check;
use crate::accounts::*;
use expect_test::expect;

#[test]
fn roles() {
    check(&Role::ALL, expect![[r#"["requester","provider","admin"]"#]]);
    for role in Role::ALL {
        assert_eq!(Role::from_name(role.name()), Some(role));
        assert_eq!(role.to_string(), role.name());
    }
    assert_eq!(Role::from_name("root"), None);
}

#[test]
fn token_messages() {
    check(
        &CreateTokenRequest { name: "lab-worker".into(), role: Role::Provider, expires_in_secs: Some(86_400) },
        expect![[r#"{"name":"lab-worker","role":"provider","expires_in_secs":86400}"#]],
    );
    check(
        &CreateTokenRequest { name: "alice".into(), role: Role::Requester, expires_in_secs: None },
        expect![[r#"{"name":"alice","role":"requester"}"#]],
    );
    // A misspelt field is refused rather than creating a token that never expires.
    let refused = serde_json::from_str::<CreateTokenRequest>(r#"{"name":"a","role":"admin","expires_in":60}"#);
    assert!(refused.unwrap_err().to_string().contains("unknown field `expires_in`"));
    check(
        &CreatedToken { name: "alice".into(), token: "rav_00ff".into(), expires_at: Some(1_800_000_000) },
        expect![[r#"{"name":"alice","token":"rav_00ff","expires_at":1800000000}"#]],
    );
    check(
        &TokenList {
            tokens: vec![TokenInfo {
                name: "alice".into(),
                role: Role::Requester,
                created_at: 1_700_000_000,
                last_used_at: Some(1_700_000_100),
                expires_at: None,
                revoked_at: Some(1_700_000_200),
            }],
        },
        expect![[
            r#"{"tokens":[{"name":"alice","role":"requester","created_at":1700000000,"last_used_at":1700000100,"expires_at":null,"revoked_at":1700000200}]}"#
        ]],
    );
}
