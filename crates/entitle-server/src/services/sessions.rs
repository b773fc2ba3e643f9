//! Web sessions for the portal and the console: stored in the database (any instance serves any
//! request), found by the hash of the cookie's secret, with idle and absolute expiry.

use chrono::{Duration, Utc};
use std::net::IpAddr;

use super::{record, Actor, ActorKind, Ctx, ServiceResult};
use crate::domain::ids;
use crate::domain::keys::hash_secret;
use crate::store::portal::{self as db, WebSession};
use crate::store::Store;

/// How long sessions and emailed links live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// A session not used for this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, however busy.
    pub absolute: Duration,
    /// An emailed sign-in link works this long, once.
    pub link_lifetime: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
            link_lifetime: Duration::minutes(15),
        }
    }
}

/// Sessions are touched at most this often, so browsing does not write on every page.
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// A live session as stored, with the hash that finds it.
pub struct Live {
    pub token_hash: String,
    pub session: WebSession,
}

/// Opens a session and records who signed in; the cookie's secret.
pub async fn open(
    store: &Store,
    policy: &SessionPolicy,
    realm: &str,
    tenant_id: &str,
    (subject_kind, subject_id): (&str, &str),
    actor: ActorKind,
    ip: IpAddr,
) -> ServiceResult<String> {
    let now = super::now();
    let token = ids::random_token(32);
    let session = WebSession {
        tenant_id: tenant_id.to_owned(),
        realm: realm.to_owned(),
        subject_kind: subject_kind.to_owned(),
        subject_id: subject_id.to_owned(),
        csrf_token: ids::random_token(20),
        created_at: now,
        last_seen_at: now,
        expires_at: now + policy.absolute,
    };
    let mut tx = store.begin().await?;
    db::insert_session(&mut tx, &hash_secret(&token), &session).await?;
    let ctx = Ctx {
        tenant_id: tenant_id.to_owned(),
        actor: Actor {
            kind: actor,
            id: Some(subject_id.to_owned()),
            ip: Some(ip.to_string()),
            adds_end_users: false,
        },
        now,
    };
    let summary = serde_json::json!({"realm": realm, "subject_kind": subject_kind});
    record(&mut tx, &ctx, "session.started", subject_kind, subject_id, summary).await?;
    tx.commit().await?;
    Ok(token)
}

/// The live session of `realm` and `tenant_id` behind a cookie's secret.
pub async fn live(
    store: &Store,
    policy: &SessionPolicy,
    realm: &str,
    tenant_id: &str,
    token: &str,
) -> ServiceResult<Option<Live>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let now = super::now();
    let token_hash = hash_secret(token);
    let stored = db::live_session(&mut *store.read().await?, &token_hash, now, now - policy.idle).await?;
    let Some(session) = stored.filter(|s| s.tenant_id == tenant_id && s.realm == realm) else {
        return Ok(None);
    };
    if now - session.last_seen_at > TOUCH_EVERY {
        db::touch_session(&mut *store.write_conn().await?, &token_hash, now).await?;
    }
    Ok(Some(Live { token_hash, session }))
}

/// Ends a session on the server: its cookie no longer works anywhere.
pub async fn end(store: &Store, token_hash: &str) -> ServiceResult<()> {
    db::end_session(&mut *store.write_conn().await?, token_hash, super::now()).await?;
    Ok(())
}

/// Forgets sessions and sign-in links that ended more than a day ago.
pub async fn purge(store: &Store, now: chrono::DateTime<Utc>) -> ServiceResult<u64> {
    Ok(db::purge(&mut *store.write_conn().await?, now - Duration::days(1), 1000).await?)
}
