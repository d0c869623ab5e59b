//! Tokens that stop working: the server closes the open sockets (a provider's, a requester's)
//! of a token revoked through the admin route, of one revoked by another process (what
//! `ravsock token revoke` does: a write to the database the server is not told of) and of one
//! that expires; each later request is refused with a 401 saying why, and the grid goes on
//! for everyone else.

use crate::hostile::{Heard, next, raw_provider, raw_socket};
use crate::stack::Stack;
use ravop::Graph;
use ravproto::accounts::{CreateTokenRequest, CreatedToken, Role, TokenList};
use ravproto::messages::{ErrorBody, ErrorCode};
use ravproto::requester::{NAMESPACE, RequesterAuth};
use ravproto::routes;
use ravsock::db::Db;

struct Admin {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    async fn create(&self, name: &str, role: Role, expires_in_secs: Option<u64>) -> String {
        let request = CreateTokenRequest { name: name.into(), role, expires_in_secs };
        let answer = self
            .http
            .post(format!("{}{}", self.url, routes::admin_tokens()))
            .bearer_auth(&self.token)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
        let created: CreatedToken = answer.json().await.unwrap();
        assert_eq!(created.name, name);
        assert_eq!(created.expires_at.is_some(), expires_in_secs.is_some());
        created.token
    }

    async fn revoke(&self, name: &str) {
        let answer = self
            .http
            .post(format!("{}{}", self.url, routes::admin_token_revoke(name)))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204);
    }

    async fn list(&self) -> (TokenList, String) {
        let answer = self
            .http
            .get(format!("{}{}", self.url, routes::admin_tokens()))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let text = answer.text().await.unwrap();
        (serde_json::from_str(&text).unwrap(), text)
    }

    /// The refusal of a request made with `token`.
    async fn refusal(&self, token: &str) -> ErrorBody {
        let answer =
            self.http.get(format!("{}{}", self.url, routes::graphs())).bearer_auth(token).send().await.unwrap();
        assert_eq!(answer.status(), 401);
        answer.json().await.unwrap()
    }
}

async fn closed(heard: &mut tokio::sync::mpsc::UnboundedReceiver<Heard>, what: &str) {
    match next(heard, what).await {
        Heard::Closed => {}
        other => panic!("{what}: heard {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoked_and_expired_tokens_lose_their_open_sockets_and_the_grid_goes_on() {
    let stack = Stack::start(30_000).await;
    // A second handle on the server's database, as the `ravsock token` command would open.
    let other_process = Db::connect(&stack.database_url).await.unwrap();
    let admin = Admin {
        url: stack.url.clone(),
        token: other_process.create_account("root", Role::Admin).await.unwrap(),
        http: crate::stack::http(),
    };

    // Revoked through the admin route: the provider's socket is closed.
    let lab = admin.create("lab-worker", Role::Provider, None).await;
    let (_lab, mut lab_heard) = raw_provider(&stack, &lab).await;
    assert!(matches!(next(&mut lab_heard, "open").await, Heard::Open));
    admin.revoke("lab-worker").await;
    closed(&mut lab_heard, "the revoked provider's socket closing").await;
    let refusal = admin.refusal(&lab).await;
    assert_eq!(refusal.code, ErrorCode::Unauthorized);
    assert!(refusal.message.contains("token of `lab-worker` was revoked"), "{}", refusal.message);

    // Revoked by another process: the server hears of it only from the database.
    let carol = admin.create("carol", Role::Requester, None).await;
    let auth = RequesterAuth { token: carol.clone(), protocol_version: ravproto::PROTOCOL_VERSION };
    let (_carol, mut carol_heard) = raw_socket(&stack, NAMESPACE, serde_json::to_value(auth).unwrap()).await;
    assert!(matches!(next(&mut carol_heard, "open").await, Heard::Open));
    let carol_graphs = admin.http.get(format!("{}{}", stack.url, routes::graphs())).bearer_auth(&carol).send().await;
    assert_eq!(carol_graphs.unwrap().status(), 200, "the server remembers carol's token");
    other_process.revoke_token("carol").await.unwrap();
    closed(&mut carol_heard, "the requester socket of a token revoked elsewhere closing").await;
    assert!(admin.refusal(&carol).await.message.contains("token of `carol` was revoked"));

    // Expiring in two seconds: the socket is closed when it does.
    let temp = admin.create("temp-worker", Role::Provider, Some(2)).await;
    let (_temp, mut temp_heard) = raw_provider(&stack, &temp).await;
    assert!(matches!(next(&mut temp_heard, "open").await, Heard::Open));
    closed(&mut temp_heard, "the expired provider's socket closing").await;
    let refusal = admin.refusal(&temp).await;
    assert!(refusal.message.contains("token of `temp-worker` expired at 20"), "{}", refusal.message);

    // The listing says all of it, and holds no secret.
    let (list, text) = admin.list().await;
    for secret in [&lab, &carol, &temp, &admin.token, &stack.requester, &stack.provider_token] {
        assert!(!text.contains(secret.as_str()), "a token's secret in the listing");
    }
    let named = |name: &str| list.tokens.iter().find(|token| token.name == name).unwrap().clone();
    assert!(named("lab-worker").revoked_at.is_some() && named("carol").revoked_at.is_some());
    assert!(named("temp-worker").revoked_at.is_none() && named("temp-worker").expires_at.is_some());
    assert!(named("alice").revoked_at.is_none() && named("alice").expires_at.is_none());
    assert!(named("root").last_used_at.is_some(), "the admin's token was used");
    assert_eq!(named("carol").role, Role::Requester);

    // Everyone else goes on.
    let provider = stack.provider(1.0);
    let graph = Graph::new("after the revocations");
    (&graph.t(vec![1.0, 2.0]) * 3.0).persist("x");
    let (_, results) = stack.client().await.compute(&graph).await.expect("the graph runs");
    assert_eq!(results.array::<f64>("x").unwrap().into_raw_vec_and_offset().0, vec![3.0, 6.0]);
    provider.stop().await.unwrap();
}
