//! The bench's own database: created empty for one run beside the database
//! the operator names, handed to the router, and dropped at the end.

use anyhow::{anyhow, bail};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

/// A database created for one bench run, dropped by [`BenchDatabase::drop_db`].
#[derive(Debug, Clone)]
pub(crate) struct BenchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let bad = || anyhow!("the database URL {url:?} is not a postgres://host/database URL");
    let after_scheme = url.find("://").ok_or_else(bad)? + 3;
    let rest = &url[after_scheme..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |q| &tail[q..]);
    Ok(format!("{}{authority}/{name}{query}", &url[..after_scheme]))
}

impl BenchDatabase {
    /// Creates an empty database `<prefix>_<hex>` through the server at
    /// `admin_url` (a URL of any existing database there, e.g. `postgres`).
    pub(crate) async fn create(admin_url: &str, prefix: &str) -> anyhow::Result<Self> {
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            bail!("the database name {name:?} must be lower-case letters, digits and '_'");
        }
        let url = with_database(admin_url, &name)?;
        let mut conn = PgConnection::connect(admin_url).await?;
        // The name was checked above: it needs no quoting beyond this.
        sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// Its connection URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The database name, for the report.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Drops it, terminating connections still open to it.
    pub(crate) async fn drop_db(self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.admin_url).await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.name
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/b1",
            ),
            (
                "postgres://u:p@h/db?sslmode=disable",
                "postgres://u:p@h/b1?sslmode=disable",
            ),
            ("postgres://h:5432", "postgres://h:5432/b1"),
        ];
        for (from, to) in cases {
            assert_eq!(with_database(from, "b1").ok().as_deref(), Some(to));
        }
        assert!(with_database("nonsense", "b1").is_err());
    }
}
