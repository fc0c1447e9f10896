//! Refresh sessions: a logout answered `204` leaves no working refresh token of its session,
//! even when a refresh of the same token commits at the same moment; a change of role, even
//! one made by hand in SQL, ends every session of the user.

use serde_json::json;

use crate::helpers::*;

both_backends!(logout_racing_refresh_leaves_no_live_token, a_role_change_ends_the_users_sessions);

/// Outcome of one `POST /auth/refresh`: the new refresh token on `200`, else the status.
async fn refresh(app: &TestApp, token: &str) -> Result<String, u16> {
    let resp = app.post("/auth/refresh", None, &json!({"refresh_token": token})).await;
    match resp.status().as_u16() {
        200 => Ok(tokens_of(&expect_json(resp, 200).await).refresh),
        s => Err(s),
    }
}

async fn logout(app: &TestApp, token: &str) -> u16 {
    app.post("/auth/logout", None, &json!({"refresh_token": token})).await.status().as_u16()
}

async fn logout_racing_refresh_leaves_no_live_token(backend: Backend) {
    const ROUNDS: usize = 200;
    let app = TestApp::spawn_with(backend, |c| c.rate_limit_per_sec = 0).await;
    let (user, _) = mint_user(app.store(), "racer").await;
    let (mut logged_out, mut survived) = (0, Vec::new());
    for round in 0..ROUNDS {
        // A fresh session per round, written like a login writes it (without argon2).
        let token = mint_session(app.store(), user).await;
        let (refreshed, out) = tokio::join!(refresh(&app, &token), logout(&app, &token));
        assert!(matches!(out, 204 | 401), "round {round}: logout answered {out}");
        assert!(matches!(refreshed, Ok(_) | Err(401)), "round {round}: refresh answered {refreshed:?}");
        if out != 204 {
            continue;
        }
        logged_out += 1;
        // After the 204 nothing of that session may work: neither the token logged out nor
        // the one the racing refresh handed out.
        assert_eq!(refresh(&app, &token).await, Err(401), "round {round}: the logged-out token still refreshes");
        if let Ok(next) = refreshed
            && let Ok(again) = refresh(&app, &next).await
        {
            survived.push((round, again));
        }
    }
    assert!(logged_out > ROUNDS / 4, "too few logouts won a race to test anything ({logged_out} of {ROUNDS})");
    assert!(survived.is_empty(), "{} of {logged_out} sessions outlived their 204 logout: {survived:?}", survived.len());
}

async fn a_role_change_ends_the_users_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("climber");
    let user = uuid_of(&expect_json(app.register(&email, PASSWORD).await, 201).await["id"]);
    let before = app.login(&email, PASSWORD).await;
    // A session that already rotated once is ended too.
    let rotated = refresh(&app, &app.login(&email, PASSWORD).await.refresh).await.expect("a first refresh");

    // Promoted by hand, as an operator might in SQL: no earlier session turns into an admin's.
    let pool = app.db.pool().await;
    let set_role = |role: &'static str| {
        let pool = &pool;
        async move {
            const SQL: &str = "UPDATE users SET role = $1 WHERE id = $2";
            let n = match pool {
                DbPool::Pg(p) => sqlx::query(SQL).bind(role).bind(user).execute(p).await.map(|r| r.rows_affected()),
                DbPool::Sqlite(p) => sqlx::query(SQL).bind(role).bind(user).execute(p).await.map(|r| r.rows_affected()),
            };
            assert_eq!(n.expect("change the role"), 1);
        }
    };
    set_role("admin").await;
    assert_eq!(refresh(&app, &before.refresh).await, Err(401), "a session from before the promotion refreshed");
    assert_eq!(refresh(&app, &rotated).await, Err(401), "a rotated session from before the promotion refreshed");
    assert_eq!(logout(&app, &before.refresh).await, 401);

    // A new login is the admin's; demoted again, its session ends as well.
    let admin = app.login(&email, PASSWORD).await;
    let renewed = refresh(&app, &admin.refresh).await.expect("the admin's session refreshes");
    set_role("user").await;
    assert_eq!(refresh(&app, &renewed).await, Err(401), "a session from before the demotion refreshed");
    // Sessions begun after the change work.
    let after = app.login(&email, PASSWORD).await;
    let access = tokens_of(
        &expect_json(app.post("/auth/refresh", None, &json!({"refresh_token": after.refresh})).await, 200).await,
    )
    .access;
    assert_eq!(expect_json(app.get("/auth/me", Some(&access)).await, 200).await["role"], "user");
    pool.close().await;
}
