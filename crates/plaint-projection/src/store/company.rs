//! The company's settings as projected: published policies, climate, stance.

use plaint_domain::{Climate, RoutingPolicy, StanceAlignment, Timestamp};
use sqlx::types::Json;

use super::{Store, StoreError, from_db_seq, parse_name};

/// A published policy version.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRow {
    /// The policy, its version included.
    pub policy: RoutingPolicy,
    /// When it was published.
    pub published_at: Timestamp,
    /// Who published it.
    pub published_by: String,
    /// Its log sequence.
    pub sequence: u64,
}

/// The operator settings in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompanySettings {
    /// Economic climate.
    pub climate: Climate,
    /// Stance alignment.
    pub stance: StanceAlignment,
}

impl Store {
    /// Every published policy, oldest first.
    pub async fn policies(&self) -> Result<Vec<PolicyRow>, StoreError> {
        let rows = sqlx::query_as::<_, (Json<RoutingPolicy>, i64, String, i64)>(
            "SELECT policy, published_at, published_by, sequence FROM policies ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(policy_row).collect())
    }

    /// One published policy version.
    pub async fn policy(&self, version: u32) -> Result<Option<PolicyRow>, StoreError> {
        let row = sqlx::query_as::<_, (Json<RoutingPolicy>, i64, String, i64)>(
            "SELECT policy, published_at, published_by, sequence FROM policies WHERE version = $1",
        )
        .bind(i32::try_from(version).unwrap_or(i32::MAX))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(policy_row))
    }

    /// The latest published policy; `None` means the default is in force.
    pub async fn latest_policy(&self) -> Result<Option<PolicyRow>, StoreError> {
        self.policy_at(Timestamp::from_millis(i64::MAX)).await
    }

    /// The policy in force at `at`: the last one published at or before it;
    /// `None` means the default was in force then.
    pub async fn policy_at(&self, at: Timestamp) -> Result<Option<PolicyRow>, StoreError> {
        let row = sqlx::query_as::<_, (Json<RoutingPolicy>, i64, String, i64)>(
            "SELECT policy, published_at, published_by, sequence FROM policies \
             WHERE published_at <= $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(at.as_millis())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(policy_row))
    }

    /// The climate and stance in force (defaults until an operator sets them).
    pub async fn company_settings(&self) -> Result<CompanySettings, StoreError> {
        let rows = sqlx::query_as::<_, (String, String)>("SELECT key, value FROM company")
            .fetch_all(&self.pool)
            .await?;
        let mut out = CompanySettings::default();
        for (key, value) in rows {
            match key.as_str() {
                "climate" => out.climate = parse_name("climate", &value)?,
                "stance" => out.stance = parse_name("stance", &value)?,
                _ => {}
            }
        }
        Ok(out)
    }
}

fn policy_row((Json(policy), at, by, seq): (Json<RoutingPolicy>, i64, String, i64)) -> PolicyRow {
    PolicyRow {
        policy,
        published_at: Timestamp::from_millis(at),
        published_by: by,
        sequence: from_db_seq(seq),
    }
}
