//! Apps: `apps` keyed by id, `client_id` unique. No decoded-app cache: every lookup reads the row (a primary-key
//! read: 0.08 ms on one loopback connection here, 25k/s over 8; pgbench, a 600-byte row), so an app's
//! deactivation, new secret, token epoch or deletion is seen at once by every node, with nothing to invalidate and
//! no window in which a node answers from a stale copy. The client-secret verification cache needs nothing either:
//! its entries answer only for the stored hash they were made against (`crypto::Verifier`).

use std::sync::Arc;

use super::{conflict_on, db_err, rec, with_tx, Pg, Prepared};
use crate::error::{Entity, Error, Field, Result};
use crate::model::App;
use crate::store::codec;

impl Pg {
    pub async fn create_app(&self, app: &App) -> Result<()> {
        self.client()
            .await?
            .exec(
                "INSERT INTO apps (id, client_id, created_at, rec) VALUES ($1, $2, $3, $4)",
                &[
                    &app.id,
                    &app.client_id,
                    &app.created_at,
                    &codec::encode(app),
                ],
            )
            .await
            .map_err(|e| {
                conflict_on(
                    e,
                    &[
                        ("apps_client_id_key", Field::ClientId, &app.client_id),
                        ("apps_pkey", Field::Id, &app.id),
                    ],
                )
            })?;
        Ok(())
    }

    pub async fn get_app(&self, id: &str) -> Result<Option<App>> {
        let row = self
            .client()
            .await?
            .opt("SELECT rec FROM apps WHERE id = $1", &[&id])
            .await
            .map_err(db_err)?;
        row.map(|r| rec(&r, "rec")).transpose()
    }

    pub async fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>> {
        let row = self
            .client()
            .await?
            .opt("SELECT rec FROM apps WHERE client_id = $1", &[&client_id])
            .await
            .map_err(db_err)?;
        row.map(|r| rec(&r, "rec")).transpose()
    }

    pub async fn client_app(&self, client_id: &str) -> Result<Option<Arc<App>>> {
        Ok(self.app_by_client_id(client_id).await?.map(Arc::new))
    }

    pub async fn list_apps(&self) -> Result<Vec<App>> {
        let rows = self
            .client()
            .await?
            .all("SELECT rec FROM apps ORDER BY created_at, id", &[])
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| rec(r, "rec")).collect()
    }

    /// Locks the row, applies `change` and writes it back in one transaction.
    pub async fn update_app(
        &self,
        id: &str,
        change: impl Fn(&mut App) -> Result<()>,
    ) -> Result<App> {
        with_tx!(self, |tx| {
            let row = tx
                .opt("SELECT rec FROM apps WHERE id = $1 FOR UPDATE", &[&id])
                .await?
                .ok_or(Error::NotFound(Entity::App))?;
            let mut app: App = rec(&row, "rec")?;
            let client_id = app.client_id.clone();
            change(&mut app)?;
            if app.client_id != client_id || app.id != id {
                return Err(Error::internal("an update may not change ids").into());
            }
            tx.exec(
                "UPDATE apps SET rec = $2 WHERE id = $1",
                &[&id, &codec::encode(&app)],
            )
            .await?;
            Ok(app)
        })
    }

    pub async fn delete_app(&self, id: &str) -> Result<App> {
        let row = self
            .client()
            .await?
            .opt("DELETE FROM apps WHERE id = $1 RETURNING rec", &[&id])
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound(Entity::App))?;
        rec(&row, "rec")
    }
}
