//! Databases for the test suites (feature `test-support`): each test gets one of
//! its own, cloned from a template migrated once per set of migrations and per day
//! (`CREATE DATABASE … TEMPLATE` copies it in about a tenth of a second, where
//! migrating from nothing costs most of a second). A per-day template keeps the
//! days' partitions around today, as a fresh migration makes them.

use std::str::FromStr;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::{Store, StoreError};

/// Every test process asks for the template under this advisory lock.
const TEMPLATE_LOCK: i64 = 0x686f_6f6b_7265_6c61;

/// Creates the database `name`, migrated, through the server `admin_url` names
/// (a role allowed to create databases). The caller drops it when done.
pub async fn create_migrated(admin_url: &str, name: &str) -> Result<(), StoreError> {
    let mut admin = PgConnection::connect(admin_url).await?;
    let template = template_name();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await?;
    let made = ensure_template(&mut admin, admin_url, &template).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await?;
    made?;
    let create = format!("CREATE DATABASE {name} TEMPLATE {template}");
    sqlx::query(AssertSqlSafe(create))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(())
}

/// `hookrelay_template_<migrations>_<day>`: a new set of migrations, or a new day,
/// makes a new template.
fn template_name() -> String {
    let mut hash = Sha256::new();
    for m in sqlx::migrate!("../migrations").iter() {
        hash.update(m.version.to_be_bytes());
        hash.update(&*m.checksum);
    }
    let digest = hash.finalize();
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "hookrelay_template_{short}_{}",
        chrono::Utc::now().format("%Y%m%d")
    )
}

/// Makes the template unless it exists (under the caller's lock), and drops the
/// templates of other migrations or days.
async fn ensure_template(
    admin: &mut PgConnection,
    admin_url: &str,
    template: &str,
) -> Result<(), StoreError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(template)
            .fetch_one(&mut *admin)
            .await?;
    if exists {
        return Ok(());
    }
    let building = format!("{template}_building");
    let drop = format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)");
    sqlx::query(AssertSqlSafe(drop))
        .execute(&mut *admin)
        .await?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {building}")))
        .execute(&mut *admin)
        .await?;
    let options = PgConnectOptions::from_str(admin_url)?.database(&building);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let store = Store::from_pool(pool.clone());
    store
        .migrate()
        .await
        .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
    pool.close().await;
    let rename = format!("ALTER DATABASE {building} RENAME TO {template}");
    sqlx::query(AssertSqlSafe(rename))
        .execute(&mut *admin)
        .await?;
    let old: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'hookrelay\\_template\\_%' AND datname <> $1",
    )
    .bind(template)
    .fetch_all(&mut *admin)
    .await?;
    for name in old {
        // Another checkout's tests may be copying it right now: then it stays.
        let drop = format!("DROP DATABASE IF EXISTS {name}");
        let _ = sqlx::query(AssertSqlSafe(drop)).execute(&mut *admin).await;
    }
    Ok(())
}
