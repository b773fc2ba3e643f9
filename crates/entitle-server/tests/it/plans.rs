//! Query plans: proof that a statement is served by indexes, read from the database itself
//! (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on PostgreSQL), for statements the store exposes.
//! Seed enough rows and `ANALYZE` first ([`analyze`]), so PostgreSQL's choice reflects real
//! costs (on a near-empty table a sequential scan is the right plan and proves nothing).

use entitle_server::store::search::Statement;
use entitle_server::store::{Backend, Store};
use sqlx::Row;

/// The plan of `statement`, one line per step.
pub async fn plan(store: &Store, statement: &Statement) -> Vec<String> {
    let explain = match store.backend() {
        Backend::Sqlite => format!("EXPLAIN QUERY PLAN {}", statement.sql),
        Backend::Postgres => format!("EXPLAIN {}", statement.sql),
    };
    let explained = Statement {
        sql: explain,
        binds: statement.binds.clone(),
    };
    let mut conn = store.read().await.unwrap();
    let rows = explained
        .query()
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("explain {}: {e}", statement.sql));
    rows.iter()
        .map(|row| match store.backend() {
            // id, parent, notused, detail
            Backend::Sqlite => row.try_get::<String, _>(3).unwrap(),
            Backend::Postgres => row.try_get::<String, _>(0).unwrap(),
        })
        .collect()
}

/// The steps of the plan of `statement` that walk one of `big_tables` instead of reaching the
/// rows it wants through an index: `SCAN <table>` on SQLite (a full table or full index walk) and
/// `Seq Scan on <table>` on PostgreSQL; and on both, an index search narrowed by the tenant alone,
/// which reads every row of the tenant.
pub async fn scans(store: &Store, statement: &Statement, big_tables: &[&str]) -> Vec<String> {
    let plan = plan(store, statement).await;
    let mut walks = Vec::new();
    let mut table_of_step: Option<&str> = None;
    for line in &plan {
        let step = line.trim_start().trim_start_matches("->").trim_start();
        let big = |prefix: &str| {
            big_tables.iter().copied().find(|table| {
                step.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix(*table))
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
            })
        };
        match store.backend() {
            Backend::Sqlite => {
                if big("SCAN ").is_some() || (big("SEARCH ").is_some() && step.ends_with("(tenant_id=?)")) {
                    walks.push(line.clone());
                }
            }
            Backend::Postgres => {
                if big("Seq Scan on ").is_some() {
                    walks.push(line.clone());
                }
                // `Index Scan using x on table …` then its `Index Cond: (…)` on the next lines.
                let scanned = step.split(" on ").nth(1).and_then(|rest| rest.split(' ').next());
                if step.contains("Scan using ") {
                    table_of_step = scanned.filter(|t| big_tables.contains(t));
                }
                if let (Some(_), Some(cond)) = (table_of_step, step.strip_prefix("Index Cond: ")) {
                    if cond.starts_with("(tenant_id = ") && !cond.contains(" AND ") {
                        walks.push(line.clone());
                    }
                }
            }
        }
    }
    walks
}

/// Fails unless every table of `big_tables` the statement reads is reached through an index.
pub async fn assert_indexed(store: &Store, statement: &Statement, big_tables: &[&str]) {
    let scans = scans(store, statement, big_tables).await;
    assert!(
        scans.is_empty(),
        "{}
walks a table:
{}
whole plan:
{}",
        statement.sql,
        scans.join("\n"),
        plan(store, statement).await.join("\n")
    );
}

/// Refreshes the planner's statistics.
pub async fn analyze(store: &Store) {
    let mut conn = store.write_conn().await.unwrap();
    sqlx::raw_sql("ANALYZE").execute(&mut *conn).await.unwrap();
}
