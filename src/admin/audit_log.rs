//! The audit trail for admins: filtered, cursor-paginated reading and CSV/JSON export. There is
//! deliberately no update or delete here: only retention (housekeeping) removes entries.

use serde::Serialize;
use serde_json::Value;

use super::{AdminError, AdminResult};
use crate::oauth::Provider;
use crate::store::{AuditQuery, AuditRecord};

/// An entry with `details` as a JSON object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub details: Value,
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        Self {
            details: serde_json::from_str(&r.details).unwrap_or(Value::Null),
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            client_id: r.client_id,
            ip: r.ip,
            user_agent: r.user_agent,
            outcome: r.outcome,
        }
    }
}

/// Most rows one export returns; narrow the filters for more.
pub const EXPORT_MAX: usize = 100_000;

pub fn check(q: &AuditQuery) -> AdminResult<()> {
    if let Some(o) = &q.outcome
        && o != "success"
        && o != "failure"
    {
        return Err(AdminError::invalid("outcome", "use success or failure"));
    }
    if let (Some(f), Some(t)) = (q.from, q.to)
        && f > t
    {
        return Err(AdminError::invalid("from", "must not be after `to`"));
    }
    for (field, v) in [
        ("user", &q.user),
        ("client_id", &q.client_id),
        ("action", &q.action),
        ("cursor", &q.before),
    ] {
        if v.as_ref().is_some_and(|v| v.len() > 256) {
            return Err(AdminError::invalid(field, "is too long"));
        }
    }
    Ok(())
}

/// One page, newest first; the next page's cursor is the last entry's id.
pub async fn page(provider: &Provider, q: &AuditQuery) -> AdminResult<Vec<AuditEntry>> {
    check(q)?;
    Ok(provider
        .store
        .query_audit(q)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Every entry matching the filters (up to `EXPORT_MAX`), newest first.
pub async fn export(provider: &Provider, q: &AuditQuery) -> AdminResult<Vec<AuditEntry>> {
    check(q)?;
    let mut q = q.clone();
    q.limit = 1000;
    let mut out = Vec::new();
    loop {
        let rows = provider.store.query_audit(&q).await?;
        let done = rows.len() < 1000;
        q.before = rows.last().map(|r| r.id.clone());
        out.extend(rows.into_iter().map(AuditEntry::from));
        if done || out.len() >= EXPORT_MAX {
            break;
        }
    }
    out.truncate(EXPORT_MAX);
    Ok(out)
}

/// RFC 4180 CSV. Cells that a spreadsheet would run as a formula get a leading `'`.
pub fn to_csv(entries: &[AuditEntry]) -> String {
    fn cell(out: &mut String, v: &str) {
        let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{v}")
        } else {
            v.to_owned()
        };
        if v.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&v.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&v);
        }
    }
    let mut out =
        String::from("id,at,actor,action,target,client_id,ip,user_agent,outcome,details\r\n");
    for e in entries {
        let at = e.at.to_string();
        let details = e.details.to_string();
        let cells = [
            e.id.as_str(),
            at.as_str(),
            e.actor.as_deref().unwrap_or_default(),
            e.action.as_str(),
            e.target.as_deref().unwrap_or_default(),
            e.client_id.as_deref().unwrap_or_default(),
            e.ip.as_deref().unwrap_or_default(),
            e.user_agent.as_deref().unwrap_or_default(),
            e.outcome.as_str(),
            details.as_str(),
        ];
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            cell(&mut out, c);
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(actor: &str, details: Value) -> AuditEntry {
        AuditEntry {
            id: "id1".into(),
            at: 1,
            actor: Some(actor.into()),
            action: "login".into(),
            target: None,
            client_id: None,
            ip: None,
            user_agent: Some("Agent, \"quoted\"".into()),
            outcome: "success".into(),
            details,
        }
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let csv = to_csv(&[entry("=HYPERLINK(1)", serde_json::json!({"a": 1}))]);
        let line = csv.lines().nth(1).unwrap();
        assert!(line.contains(",'=HYPERLINK(1),"), "{line}");
        assert!(line.contains("\"Agent, \"\"quoted\"\"\""), "{line}");
        assert!(line.ends_with("\"{\"\"a\"\":1}\""), "{line}");
        assert!(csv.ends_with("\r\n"));
    }

    #[test]
    fn outcome_and_range_are_checked() {
        let q = AuditQuery {
            outcome: Some("maybe".into()),
            ..AuditQuery::default()
        };
        assert!(check(&q).is_err());
        let q = AuditQuery {
            from: Some(10),
            to: Some(5),
            ..AuditQuery::default()
        };
        assert!(check(&q).is_err());
        assert!(check(&AuditQuery::default()).is_ok());
    }
}
