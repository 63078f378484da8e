//! Backup and restore on PostgreSQL, in the backend-neutral file format (`store/backup.rs`): the export reads every
//! record table in one `REPEATABLE READ` snapshot (consistent while nodes keep serving) and writes each row as the
//! record sled would hold under the same key, a flag column (`redeemed`, `rotated`, `revoked`) folded back into its
//! blob; the import writes the records of a file (from either backend) into an empty database in one transaction,
//! deriving every column and the admin count from the records. sled's index trees in a file are skipped: the
//! database keeps its own indexes. Links and providers are read and written here directly by their tables.

use std::io::Write;

use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::{Pg, Prepared};
use crate::model::{App, Link, Provider, SigningKey, User};
use crate::store::backup::{Writer, INDEX_TREES, RECORD_TREES};
use crate::store::codec;
use crate::store::record::revoked_jti::RevokedJti;
use crate::store::token::{CodeRecord, FamilyRecord, Lineage, TokenKind, TokenRecord};
use crate::store::LoginToken;

/// Each record table as its tree: the query of its key and record, in sled's layout.
const EXPORT: &[(&str, &str)] = &[
    ("meta", "SELECT key::bytea, value FROM meta"),
    ("settings", "SELECT id::bytea, rec FROM settings"),
    ("signing_keys", "SELECT kid::bytea, rec FROM signing_keys"),
    ("apps", "SELECT id::bytea, rec FROM apps"),
    ("users", "SELECT id::bytea, rec FROM users"),
    ("login_tokens", "SELECT digest, rec FROM login_tokens"),
    ("providers", "SELECT key::bytea, rec FROM providers"),
    ("links", "SELECT id::bytea, rec FROM links"),
    ("codes", "SELECT digest, rec, redeemed FROM codes"),
    ("families", "SELECT id, rec, revoked FROM families"),
    ("tokens", "SELECT digest, rec, rotated FROM tokens"),
    ("revoked_jti", "SELECT jti::bytea, rec FROM revoked_jti"),
];

/// sled's own bookkeeping in `meta`, derived again by a sled restore; PostgreSQL keeps neither.
const SLED_META: &[&str] = &["schema", "admins"];

fn failed(e: tokio_postgres::Error) -> String {
    format!("PostgreSQL: {e}")
}

fn undecodable(tree: &str) -> impl Fn(crate::error::Error) -> String + '_ {
    move |e| format!("a record in {tree} does not decode: {e:?}")
}

impl Pg {
    /// Writes every record to `w` from one consistent snapshot.
    pub async fn export<W: Write>(&self, w: &mut Writer<W>) -> Result<(), String> {
        let mut client = self.pool.get().await.map_err(|e| e.to_string())?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(failed)?;
        for (tree, sql) in EXPORT {
            w.tree(tree);
            for row in tx.all(sql, &[]).await.map_err(failed)? {
                let key: &[u8] = row.get(0);
                let rec: &[u8] = row.get(1);
                w.record(tree, key, &fold_flag(tree, &row, rec)?)?;
            }
        }
        tx.commit().await.map_err(failed)
    }

    /// Decodes every record of every table; the error lists the ones that do not decode (`verify`).
    pub async fn check_records(&self) -> Result<(), String> {
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        let mut bad = Vec::new();
        for (tree, sql) in EXPORT {
            for row in client.all(sql, &[]).await.map_err(failed)? {
                let key: &[u8] = row.get(0);
                if let Err(e) = columns(tree, key, row.get(1)) {
                    bad.push(format!("{tree} {}: {e}", String::from_utf8_lossy(key)));
                }
            }
        }
        match bad.is_empty() {
            true => Ok(()),
            false => Err(format!("store verification failed: {}", bad.join("; "))),
        }
    }

    /// Imports `records` (tree, key, value) into this database, which must hold no record yet, in one
    /// transaction: all of it or nothing.
    pub async fn import(&self, records: &[(String, Vec<u8>, Vec<u8>)]) -> Result<(), String> {
        let mut client = self.pool.get().await.map_err(|e| e.to_string())?;
        let tx = client.transaction().await.map_err(failed)?;
        if let Some(tree) = first_nonempty(&tx).await? {
            return Err(format!(
                "the PostgreSQL database is not empty (table {tree} has rows); restore only into a new database"
            ));
        }
        if let Some((tree, ..)) = records.iter().find(|(t, ..)| {
            !RECORD_TREES.contains(&t.as_str()) && !INDEX_TREES.contains(&t.as_str())
        }) {
            return Err(format!(
                "the backup has a tree PostgreSQL has no table for: {tree}"
            ));
        }
        let mut admins = 0i64;
        for tree in RECORD_TREES {
            for (_, key, value) in records.iter().filter(|(t, ..)| t == tree) {
                admins += insert(&tx, tree, key, value).await?;
            }
        }
        tx.exec("UPDATE admin_count SET n = $1", &[&admins])
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)
    }
}

/// The record of a row with its flag column folded back into the blob (the column wins, as on every read).
fn fold_flag(tree: &str, row: &tokio_postgres::Row, rec: &[u8]) -> Result<Vec<u8>, String> {
    let bad = undecodable(tree);
    Ok(match tree {
        "codes" => {
            let mut c: CodeRecord = codec::decode(rec).map_err(&bad)?;
            c.redeemed = row
                .get::<_, Option<&[u8]>>(2)
                .map(|f| {
                    f.try_into()
                        .map_err(|_| "a redeemed family id is malformed")
                })
                .transpose()?;
            codec::encode(&c)
        }
        "families" => {
            let mut f: FamilyRecord = codec::decode(rec).map_err(&bad)?;
            f.revoked = row.get(2);
            codec::encode(&f)
        }
        "tokens" => {
            let mut t: TokenRecord = codec::decode(rec).map_err(&bad)?;
            t.rotated = row.get(2);
            codec::encode(&t)
        }
        _ => rec.to_vec(),
    })
}

/// The first record table with a row, if any.
async fn first_nonempty(tx: &Transaction<'_>) -> Result<Option<&'static str>, String> {
    for (tree, _) in EXPORT {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {tree})");
        if tx.one(&sql, &[]).await.map_err(failed)?.get(0) {
            return Ok(Some(tree));
        }
    }
    Ok(None)
}

/// A column value of a row to insert.
type Value = Box<dyn ToSql + Sync + Send>;

/// The statement that inserts a record of `tree` and its column values, decoded from the record (an undecodable
/// record is an error); `None` for sled's own bookkeeping and index trees.
fn columns(
    tree: &str,
    key: &[u8],
    value: &[u8],
) -> Result<Option<(&'static str, Vec<Value>)>, String> {
    let bad = undecodable(tree);
    let text =
        || String::from_utf8(key.to_vec()).map_err(|_| format!("a key in {tree} is not UTF-8"));
    let v = value.to_vec();
    fn b<T: ToSql + Sync + Send + 'static>(t: T) -> Value {
        Box::new(t)
    }
    Ok(Some(match tree {
        "meta" if SLED_META.contains(&text()?.as_str()) => return Ok(None),
        "meta" => (
            "INSERT INTO meta (key, value) VALUES ($1, $2)",
            vec![b(text()?), b(v)],
        ),
        "settings" => {
            codec::decode::<crate::model::provider::SettingValue>(value).map_err(&bad)?;
            (
                "INSERT INTO settings (id, rec) VALUES ($1, $2)",
                vec![b(text()?), b(v)],
            )
        }
        "signing_keys" => {
            let k: SigningKey = codec::decode(value).map_err(&bad)?;
            (
                "INSERT INTO signing_keys (kid, signs_from, rec) VALUES ($1, $2, $3)",
                vec![b(k.kid), b(k.signs_from), b(v)],
            )
        }
        "apps" => {
            let a: App = codec::decode(value).map_err(&bad)?;
            (
                "INSERT INTO apps (id, client_id, created_at, rec) VALUES ($1, $2, $3, $4)",
                vec![b(a.id), b(a.client_id), b(a.created_at), b(v)],
            )
        }
        "users" => {
            let u: User = codec::decode(value).map_err(&bad)?;
            (
                "INSERT INTO users (id, username_key, is_admin, rec) VALUES ($1, $2, $3, $4)",
                vec![
                    b(u.id.clone()),
                    b(u.username.to_lowercase()),
                    b(u.is_admin()),
                    b(v),
                ],
            )
        }
        "login_tokens" => {
            let t: LoginToken = codec::decode(value).map_err(&bad)?;
            (
                "INSERT INTO login_tokens (digest, user_id, expires_at, rec) VALUES ($1, $2, $3, $4)",
                vec![b(key.to_vec()), b(t.user_id), b(t.expires_at), b(v)],
            )
        }
        "providers" => {
            let p: Provider = codec::decode(value).map_err(&bad)?;
            (
                "INSERT INTO providers (key, created_at, rec) VALUES ($1, $2, $3)",
                vec![b(text()?), b(p.created_at), b(v)],
            )
        }
        "links" => {
            let l: Link = codec::decode(value).map_err(&bad)?;
            (
                "INSERT INTO links (id, user_id, provider, account_id, allow_sign_in, created_at, rec)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                vec![
                    b(l.id),
                    b(l.user_id),
                    b(l.provider),
                    b(l.account_id),
                    b(l.allow_sign_in),
                    b(l.created_at),
                    b(v),
                ],
            )
        }
        "codes" => {
            let c: CodeRecord = codec::decode(value).map_err(&bad)?;
            (
                "INSERT INTO codes (digest, client_id, expires_at, redeemed, rec) VALUES ($1, $2, $3, $4, $5)",
                vec![
                    b(key.to_vec()),
                    b(c.grant.client_id),
                    b(c.expires_at),
                    b(c.redeemed.map(|f| f.to_vec())),
                    b(v),
                ],
            )
        }
        "families" => {
            let f: FamilyRecord = codec::decode(value).map_err(&bad)?;
            (
                "INSERT INTO families (id, client_id, user_id, revoked, rec) VALUES ($1, $2, $3, $4, $5)",
                vec![
                    b(key.to_vec()),
                    b(f.client_id.clone()),
                    b(f.subject.user_id().map(str::to_owned)),
                    b(f.revoked),
                    b(v),
                ],
            )
        }
        "tokens" => {
            let t: TokenRecord = codec::decode(value).map_err(&bad)?;
            let family = match t.lineage {
                Lineage::Family(f) => Some(f.to_vec()),
                Lineage::Epoch(_) => None,
            };
            (
                "INSERT INTO tokens (digest, family, is_refresh, client_id, expires_at, rotated, sibling, rec)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                vec![
                    b(key.to_vec()),
                    b(family),
                    b(t.kind == TokenKind::Refresh),
                    b(t.client_id),
                    b(t.expires_at),
                    b(t.rotated),
                    b(t.sibling.map(|s| s.to_vec())),
                    b(v),
                ],
            )
        }
        "revoked_jti" => {
            let r: RevokedJti = codec::decode(value).map_err(&bad)?;
            (
                "INSERT INTO revoked_jti (jti, expires_at, rec) VALUES ($1, $2, $3)",
                vec![b(text()?), b(r.expires_at), b(v)],
            )
        }
        _ => return Ok(None),
    }))
}

/// Inserts one record (and a user's emails); returns 1 for an admin user (the admin count), else 0.
async fn insert(tx: &Transaction<'_>, tree: &str, key: &[u8], value: &[u8]) -> Result<i64, String> {
    let Some((sql, values)) = columns(tree, key, value)? else {
        return Ok(0);
    };
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|x| &**x as _).collect();
    tx.exec(sql, &params)
        .await
        .map_err(|e| format!("cannot restore a record of {tree}: {e}"))?;
    if tree != "users" {
        return Ok(0);
    }
    let u: User = codec::decode(value).map_err(undecodable(tree))?;
    for m in &u.emails {
        tx.exec(
            "INSERT INTO user_emails (address, user_id) VALUES ($1, $2)",
            &[&m.address, &u.id],
        )
        .await
        .map_err(|e| format!("cannot restore the emails of user {}: {e}", u.id))?;
    }
    Ok(i64::from(u.is_admin()))
}
