//! `ward admin`: identity administration from the operator's shell (audited).

use crate::app::AppState;
use crate::config::Config;

/// `ward admin bootstrap`: the first admin; the password from `WARD_BOOTSTRAP_PASSWORD` or
/// stdin.
pub async fn bootstrap(config: Config, user_id: &str) -> anyhow::Result<()> {
    // The full application state (keys, audit log), without serving.
    let state = AppState::build(config).await?;
    let password = match std::env::var("WARD_BOOTSTRAP_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    crate::auth::bootstrap_admin(&state.auth(), user_id, &password)
        .await
        .map_err(|e| anyhow::anyhow!(crate::http::error::ApiError::from(e).message))?;
    println!(
        "ward: admin {user_id} created; log in with POST /auth/login, then enrol TOTP (POST /auth/totp/enroll)"
    );
    state.audit.flush().await?;
    Ok(())
}

/// `ward admin reset-2fa`: removes a user's TOTP and revokes their sessions.
pub async fn reset_2fa(config: Config, user_id: &str, reason: &str) -> anyhow::Result<()> {
    let state = AppState::build(config).await?;
    crate::auth::totp::reset(&state.auth(), user_id, None, &format!("cli:{reason}"))
        .await
        .map_err(|e| anyhow::anyhow!(crate::http::error::ApiError::from(e).message))?;
    let n = crate::auth::session::revoke_all(&state.auth(), user_id, None, "2fa_reset")
        .await
        .map_err(|e| anyhow::anyhow!(crate::http::error::ApiError::from(e).message))?;
    println!(
        "ward: TOTP removed for {user_id}; {n} sessions revoked; they enrol again at the next login"
    );
    state.audit.flush().await?;
    Ok(())
}
