//! Idempotency look-ups of a crowd, grouped (PostgreSQL). When a thousand holds arrive at once,
//! each would otherwise wait for a pooled connection to ask for its own key; instead every
//! look-up that arrives while one query runs joins the next, which answers them all with one
//! `UNNEST` join. The same idea as the journal's group commit, for reads.

use std::collections::HashMap;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{StoreError, StoreResult};
use crate::domain::ids::{BookingId, UserId};

type Answer = StoreResult<Option<(String, BookingId)>>;

struct Ask {
    user: UserId,
    key: String,
    reply: oneshot::Sender<Answer>,
}

#[derive(Debug)]
pub(super) struct KeyLookups {
    tx: mpsc::Sender<Ask>,
}

const MAX_GROUP: usize = 1000;

impl KeyLookups {
    pub(super) fn start(pool: PgPool) -> Self {
        let (tx, mut rx) = mpsc::channel::<Ask>(16 * MAX_GROUP);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(ask) => group.push(ask),
                        Err(_) => break,
                    }
                }
                answer(&pool, group).await;
            }
        });
        Self { tx }
    }

    pub(super) async fn lookup(&self, user: UserId, key: &str) -> Answer {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unreachable("the look-up task stopped".into());
        self.tx.send(Ask { user, key: key.to_owned(), reply }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn answer(pool: &PgPool, group: Vec<Ask>) {
    let users: Vec<Uuid> = group.iter().map(|a| a.user.0).collect();
    let keys: Vec<&str> = group.iter().map(|a| a.key.as_str()).collect();
    // Two claims racing with one key on two events may both have been written; the first answers.
    let rows: Result<Vec<(Uuid, String, String, Uuid)>, sqlx::Error> = sqlx::query_as(
        "SELECT DISTINCT ON (b.user_id, b.idempotency_key) b.user_id, b.idempotency_key, b.request_hash, b.id \
         FROM bookings b JOIN UNNEST($1::uuid[], $2::text[]) AS k(user_id, key) \
         ON b.user_id = k.user_id AND b.idempotency_key = k.key \
         ORDER BY b.user_id, b.idempotency_key, b.id",
    )
    .bind(&users)
    .bind(&keys)
    .fetch_all(pool)
    .await;
    match rows {
        Ok(rows) => {
            let found: HashMap<(Uuid, String), (String, Uuid)> =
                rows.into_iter().map(|(u, k, h, id)| ((u, k), (h, id))).collect();
            for ask in group {
                let hit = found.get(&(ask.user.0, ask.key)).map(|(h, id)| (h.clone(), BookingId(*id)));
                let _ = ask.reply.send(Ok(hit));
            }
        }
        Err(e) => {
            let e = StoreError::from(e);
            let message = e.to_string();
            let unreachable = e.is_unreachable();
            for ask in group {
                let err = if unreachable {
                    StoreError::Unreachable(message.clone())
                } else {
                    StoreError::Corrupt(message.clone())
                };
                let _ = ask.reply.send(Err(err));
            }
        }
    }
}
