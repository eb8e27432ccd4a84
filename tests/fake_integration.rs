//! The fake integration (`tests/fakes/integration.rs`) proven on its own,
//! before hoist's tests lean on it: signed webhooks in the contract's
//! shape are sent to it by hand, and a small axum app stands in for
//! hoist's `PATCH /v1/deployments/{id}/actions/{action}`.

mod fakes;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::patch;
use fakes::integration::{CANCEL, FakeIntegration, Plan, START, sign};
use serde_json::{Value, json};

const SECRET: &str = "whsec-integration-test-0123456789";

/// A report hoist's stand-in received.
#[derive(Debug, Clone, PartialEq)]
struct Report {
    deployment: String,
    action: String,
    authorization: Option<String>,
    body: Value,
}

type Reports = Arc<Mutex<Vec<Report>>>;

/// hoist's action endpoint, recording what integrations report.
async fn stand_in_for_hoist() -> (std::net::SocketAddr, Reports) {
    let reports = Reports::default();
    let app = Router::new()
        .route(
            "/v1/deployments/{id}/actions/{action}",
            patch(record_report),
        )
        .with_state(Arc::clone(&reports));
    (fakes::listen(app).await, reports)
}

async fn record_report(
    State(reports): State<Reports>,
    Path((deployment, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    reports.lock().unwrap().push(Report {
        deployment,
        action,
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    StatusCode::OK
}

/// A webhook body as hoist sends it, for `action` of deployment 12.
fn webhook(event: &str, action: &str, hoist: std::net::SocketAddr) -> Vec<u8> {
    json!({
        "type": event,
        "id": "6f1c1a52-8a35-4a4e-9a1e-3f1f3b7c9d10",
        "createdAt": 1764700000000_u64,
        "payload": {
            "installationId": "hoist:acme/api",
            "action": action,
            "resourceId": "api-staging",
            "deployment": {
                "id": "12",
                "app": "api",
                "environment": "staging",
                "ref": "main",
                "sha": "0123456789abcdef0123456789abcdef01234567",
                "url": format!("http://{hoist}/v1/deployments/12/actions/{action}"),
            },
        },
    })
    .to_string()
    .into_bytes()
}

/// POSTs `body` to the fake as hoist would, with `signature` as its
/// `X-Hoist-Signature-256` (none when `None`); the fake's status code.
async fn deliver(
    integration: &FakeIntegration,
    event: &str,
    body: &[u8],
    signature: Option<&str>,
) -> u16 {
    let address = integration
        .url("")
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("X-Hoist-Event", event),
        ("X-Hoist-Delivery", "2a3a1c8e-1111-4222-8333-444455556666"),
    ];
    headers.extend(signature.map(|signature| ("X-Hoist-Signature-256", signature)));
    let (status, _) = support::http(address, "POST", "/hoist", &headers, body).await;
    status
}

/// POSTs `body` signed with the shared secret.
async fn deliver_signed(integration: &FakeIntegration, event: &str, body: &[u8]) -> u16 {
    deliver(integration, event, body, Some(&sign(SECRET, body))).await
}

#[test]
fn the_signature_is_hmac_sha256_in_lowercase_hex() {
    // RFC 4231's test case 2.
    assert_eq!(
        sign("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[tokio::test]
async fn deliveries_are_recorded_and_only_good_signatures_accepted() {
    let integration = FakeIntegration::start(SECRET).await;
    let (hoist, _) = stand_in_for_hoist().await;
    let body = webhook(START, "branch-db", hoist);

    let forged = sign("another-secret", &body);
    assert_eq!(
        deliver(&integration, START, &body, Some(&forged)).await,
        401
    );
    assert_eq!(deliver(&integration, START, &body, None).await, 401);
    let mut altered = body.clone();
    altered[10] ^= 0x01;
    let signed_before = sign(SECRET, &body);
    assert_eq!(
        deliver(&integration, START, &altered, Some(&signed_before)).await,
        401
    );
    assert_eq!(deliver_signed(&integration, CANCEL, &body).await, 200);

    let deliveries = integration.deliveries();
    let seen: Vec<(bool, u16)> = deliveries
        .iter()
        .map(|delivery| (delivery.signature_ok, delivery.answered))
        .collect();
    assert_eq!(
        seen,
        [(false, 401), (false, 401), (false, 401), (true, 200)]
    );
    let cancel = integration.wait_for(CANCEL, "branch-db").await;
    assert_eq!(cancel.delivery_id, "2a3a1c8e-1111-4222-8333-444455556666");
    assert_eq!(cancel.body["payload"]["resourceId"], "api-staging");
    assert_eq!(cancel.action(), "branch-db");
}

#[tokio::test]
async fn a_successful_action_reports_its_secrets_with_the_bearer() {
    let integration = FakeIntegration::start(SECRET).await;
    let (hoist, reports) = stand_in_for_hoist().await;
    integration.answer_with(
        "branch-db",
        Plan::Succeed {
            after: Duration::from_millis(50),
            secrets: vec![("DATABASE_URL".into(), "postgres://db/branch-12".into())],
        },
    );
    let body = webhook(START, "branch-db", hoist);
    assert_eq!(deliver_signed(&integration, START, &body).await, 200);

    let report =
        support::eventually("the report", || reports.lock().unwrap().first().cloned()).await;
    assert_eq!(
        report,
        Report {
            deployment: "12".into(),
            action: "branch-db".into(),
            authorization: Some(format!("Bearer {SECRET}")),
            body: json!({
                "status": "succeeded",
                "outcomes": [{"kind": "resource-secrets", "secrets": [{"name": "DATABASE_URL", "value": "postgres://db/branch-12"}]}],
            }),
        }
    );
    let patched = support::eventually("the PATCH's status", || {
        integration.patch_statuses().first().cloned()
    })
    .await;
    assert_eq!(patched.status, Some(200));
    assert_eq!(patched.action, "branch-db");
}

#[tokio::test]
async fn a_failing_action_reports_its_reason_and_one_never_reports() {
    let integration = FakeIntegration::start(SECRET).await;
    let (hoist, reports) = stand_in_for_hoist().await;
    integration.answer_with(
        "branch-db",
        Plan::Fail {
            after: Duration::ZERO,
            reason: "branch limit reached".into(),
        },
    );
    // `readiness` has no plan: `Never`.
    for action in ["readiness", "branch-db"] {
        let body = webhook(START, action, hoist);
        assert_eq!(deliver_signed(&integration, START, &body).await, 200);
    }
    let report =
        support::eventually("the report", || reports.lock().unwrap().first().cloned()).await;
    assert_eq!(report.action, "branch-db");
    assert_eq!(report.authorization, Some(format!("Bearer {SECRET}")));
    assert_eq!(
        report.body,
        json!({"status": "failed", "reason": "branch limit reached"})
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reports.lock().unwrap().len(),
        1,
        "`readiness` never reports"
    );
    assert_eq!(
        integration.wait_for(START, "readiness").await.action(),
        "readiness"
    );
}

#[tokio::test]
async fn failed_deliveries_are_answered_500_and_a_retry_gets_through() {
    let integration = FakeIntegration::start(SECRET).await;
    let (hoist, reports) = stand_in_for_hoist().await;
    integration.answer_with(
        "branch-db",
        Plan::Succeed {
            after: Duration::ZERO,
            secrets: Vec::new(),
        },
    );
    integration.fail_deliveries(2);
    let body = webhook(START, "branch-db", hoist);
    for expected in [500, 500, 200] {
        assert_eq!(deliver_signed(&integration, START, &body).await, expected);
    }
    let answered: Vec<u16> = integration
        .deliveries()
        .iter()
        .map(|delivery| delivery.answered)
        .collect();
    assert_eq!(answered, [500, 500, 200]);
    assert!(
        integration
            .deliveries()
            .iter()
            .all(|delivery| delivery.signature_ok)
    );
    assert_eq!(integration.wait_for(START, "branch-db").await.answered, 200);
    support::eventually("the report", || reports.lock().unwrap().first().cloned()).await;
    assert_eq!(
        reports.lock().unwrap().len(),
        1,
        "only the accepted delivery is acted on"
    );
}
