//! The second factor: TOTP enrolment (`enable` → `confirm` → `disable`) and the check that guards *2FA* routes,
//! with Rocket.Chat's method selection (`checkCodeForUser`): a user with TOTP must give a TOTP (or backup) code;
//! a user without it gives their password (plain or its SHA-256 hex) unless the password fallback is off
//! ([`Fallback`] says when it applies). A TOTP code is accepted once: the user's record remembers the last
//! accepted time step, and a code of that step or an older one fails.

use totp_rs::{Algorithm, TOTP};

use super::throttle::SharedThrottle;
use crate::clock::Clock;
use crate::crypto::{self, ct_eq, sha256, sha256_hex, Hasher, Sealer};
use crate::error::{Entity, Error, Result, Rule};
use crate::model::user::{PasswordDigest, TwoFactor};
use crate::model::User;
use crate::store::Store;

/// What the second-factor use cases touch: the store, the clock, the argon2 pool, the sealer of TOTP seeds, the
/// per-user window of wrong codes, and whether the configured password fallback is on.
#[derive(Clone, Copy)]
pub struct Factors<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub hasher: &'a Hasher,
    pub sealer: &'a Sealer,
    pub throttle: &'a SharedThrottle,
    /// `two_factor.enforce_password_fallback` as resolved by the config.
    pub password_fallback: bool,
}

/// The issuer shown by authenticator apps.
pub const ISSUER: &str = "Latchkey";
/// Wrong codes per user per window before `totp-max-attempts`.
pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW_MS: i64 = 5 * 60 * 1000;
/// RC hands out 12 backup codes when TOTP is confirmed.
const BACKUP_CODES: usize = 12;
const SEED_BYTES: usize = 20;
/// RFC 6238's time step, in seconds.
const STEP_SECS: u64 = 30;

/// The 2FA method a check used, named as RC names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Totp,
    Password,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::Password => "password",
        }
    }

    /// RC's `availableMethods`: the second factors the user has enabled (the password fallback is not one).
    pub fn available(self) -> &'static [&'static str] {
        match self {
            Method::Totp => &["totp"],
            Method::Password => &[],
        }
    }
}

/// Why a second-factor step failed; each maps to one RC errorType.
#[derive(Debug)]
pub enum Failure {
    /// No code given (`totp-required`).
    Required(Method),
    /// Wrong code (`totp-invalid`).
    Invalid(Method),
    /// Too many wrong codes in the window (`totp-max-attempts`).
    MaxAttempts(Method),
    /// `enable` while TOTP is on.
    AlreadyEnabled,
    /// `disable` while TOTP is off.
    NotEnabled,
    /// `confirm` without a pending seed (or the seed changed meanwhile).
    NothingPending,
    /// Anything else (store errors, a busy argon2 pool, enrolment in the wrong state).
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

/// A fresh TOTP seed to show once.
pub struct Enrolment {
    /// base32 (RFC 4648, unpadded), for typing into an authenticator.
    pub secret: String,
    /// `otpauth://totp/Latchkey:<username>?secret=…&issuer=Latchkey`, for a QR code.
    pub url: String,
}

fn totp(seed: Vec<u8>, username: &str) -> TOTP {
    // RFC 6238 defaults, as every authenticator app and RC use; skew 1 accepts the neighbouring 30 s steps.
    TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECS,
        seed,
        Some(ISSUER.into()),
        username.into(),
    )
}

fn seed_aad(user_id: &str) -> Vec<u8> {
    [b"totp:".as_slice(), user_id.as_bytes()].concat()
}

fn now_secs(clock: &Clock) -> u64 {
    // `TOTP::check` subtracts the skew from the step number: keep it off zero even on an odd test clock.
    u64::try_from(clock.now_ms() / 1000).unwrap_or(0).max(60)
}

/// When a user without TOTP must give their password as the second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// RC's *2FA* routes: when `two_factor.enforce_password_fallback` is on.
    Configured,
    /// Enrolling a factor (RC's `requireSecondFactor`): always, whatever the setting, so a session
    /// alone (without the password) can never enrol a TOTP of its own and lock the user out.
    Always,
    /// Sign-in (RC's `disablePasswordFallback`): never; the password was the first factor.
    Never,
}

/// The method `user` must pass, or `None` when nothing is asked (no second factor and no fallback applies).
fn method_for(ctx: Factors<'_>, user: &User, fallback: Fallback) -> Option<Method> {
    let password = user.password_hash.is_some()
        && match fallback {
            Fallback::Configured => ctx.password_fallback,
            Fallback::Always => true,
            Fallback::Never => false,
        };
    if user.totp_active() {
        Some(Method::Totp)
    } else if password {
        Some(Method::Password)
    } else {
        None
    }
}

/// Checks the second factor of `user`. `code` is `x-2fa-code` when both 2FA headers were sent (or the sign-in
/// code).
pub async fn check(
    ctx: Factors<'_>,
    user: &User,
    code: Option<&str>,
    fallback: Fallback,
) -> Result<(), Failure> {
    // RC: no second factor available and no fallback → the route is open to the session alone.
    let Some(method) = method_for(ctx, user, fallback) else {
        return Ok(());
    };
    let Some(code) = code.filter(|c| !c.is_empty()) else {
        return Err(Failure::Required(method));
    };
    throttled(ctx, user, method, async {
        match method {
            Method::Totp => verify_totp_or_backup(ctx, user, code).await,
            Method::Password => verify_password(ctx, user, code).await,
        }
    })
    .await
}

/// Runs `verify` under the per-user window. The attempt is counted before `verify` runs (simultaneous codes
/// cannot outrun the limit) and forgotten on success; a full window refuses even a right code.
async fn throttled(
    ctx: Factors<'_>,
    user: &User,
    method: Method,
    verify: impl std::future::Future<Output = Result<bool>>,
) -> Result<(), Failure> {
    let throttle = ctx.throttle;
    let Ok(left) = throttle.reserve(&user.id, ctx.clock.now_ms()).await else {
        return Err(Failure::MaxAttempts(method));
    };
    match verify.await {
        Ok(true) => {
            throttle.reset(&user.id).await;
            Ok(())
        }
        // RC says `totp-max-attempts` on the wrong code that uses up the window.
        Ok(false) if left == 0 => Err(Failure::MaxAttempts(method)),
        Ok(false) => Err(Failure::Invalid(method)),
        Err(e) => {
            throttle.give_back(&user.id).await;
            Err(e.into())
        }
    }
}

fn open_seed(ctx: Factors<'_>, user: &User) -> Result<Option<Vec<u8>>> {
    let Some(sealed) = user
        .two_factor
        .as_ref()
        .and_then(|t| t.totp_secret.as_ref())
    else {
        return Ok(None);
    };
    ctx.sealer
        .open(sealed, &seed_aad(&user.id))
        .map(Some)
        .ok_or_else(|| Error::internal("a TOTP seed does not open under the master key"))
}

/// The time step `code` belongs to, if it is the code of the current step or a neighbour (skew 1).
fn totp_step(ctx: Factors<'_>, user: &User, seed: Vec<u8>, code: &str) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 {
        return None;
    }
    let t = totp(seed, &user.username);
    let now = now_secs(ctx.clock) / STEP_SECS;
    // Every candidate is compared, so the time taken does not tell which step matched.
    (now - 1..=now + 1).fold(None, |found, step| {
        let hit = ct_eq(t.generate(step * STEP_SECS).as_bytes(), code.as_bytes());
        if hit {
            Some(step)
        } else {
            found
        }
    })
}

/// A TOTP code of the enabled seed (each step once), else an unused backup code (consumed).
async fn verify_totp_or_backup(ctx: Factors<'_>, user: &User, code: &str) -> Result<bool> {
    let seed = open_seed(ctx, user)?.ok_or(Error::internal("TOTP is on without a seed"))?;
    if let Some(step) = totp_step(ctx, user, seed, code) {
        return use_step(ctx, user, step).await;
    }
    let digest = sha256(code.trim().as_bytes());
    let known = user
        .two_factor
        .as_ref()
        .is_some_and(|t| t.backup_codes.iter().any(|c| ct_eq(c, &digest)));
    if !known {
        return Ok(false);
    }
    // Consume it; of two concurrent uses only the transaction that still finds it wins.
    let consumed = ctx
        .store
        .update_user(&user.id, |u| {
            let t = u.two_factor.get_or_insert_with(TwoFactor::default);
            let before = t.backup_codes.len();
            t.backup_codes.retain(|c| !ct_eq(c, &digest));
            if t.backup_codes.len() == before {
                return Err(Error::NotFound(Entity::BackupCode));
            }
            Ok(())
        })
        .await;
    match consumed {
        Ok(_) => Ok(true),
        Err(Error::NotFound(Entity::BackupCode)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Records `step` as the user's last accepted TOTP step, in the transaction that checks it is newer: of two
/// uses of one code (or a code older than the last accepted one) only the first passes.
async fn use_step(ctx: Factors<'_>, user: &User, step: u64) -> Result<bool> {
    let used = ctx
        .store
        .update_user(&user.id, |u| {
            let t = u.two_factor.get_or_insert_with(TwoFactor::default);
            if t.last_totp_step >= step {
                return Err(Error::NotAllowed(Rule::TotpStepReplayed));
            }
            t.last_totp_step = step;
            Ok(())
        })
        .await;
    match used {
        Ok(_) => Ok(true),
        Err(Error::NotAllowed(Rule::TotpStepReplayed)) => Ok(false),
        Err(e) => Err(e),
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The password method: the plain password, or its SHA-256 hex (what RC clients send). Both checks are argon2
/// on the bounded pool, never on a runtime worker.
async fn verify_password(ctx: Factors<'_>, user: &User, code: &str) -> Result<bool> {
    let Some(phc) = user.password_hash.clone() else {
        return Ok(false);
    };
    let bound = sha256(phc.as_bytes());
    let digest = user
        .two_factor
        .as_ref()
        .and_then(|t| t.password_digest.as_ref())
        .filter(|d| d.for_password == bound);
    if is_sha256_hex(code) {
        if let Some(d) = digest {
            if ctx
                .hasher
                .verify(code.to_ascii_lowercase(), d.phc.clone())
                .await?
            {
                return Ok(true);
            }
        }
    }
    if !ctx.hasher.verify(code.to_owned(), phc.clone()).await? {
        return Ok(false);
    }
    if digest.is_none() {
        // The password was given in clear: the one moment the digest verifier can be made.
        let d = password_digest(ctx.hasher, code, &phc).await?;
        ctx.store
            .update_user(&user.id, |u| {
                if u.password_hash.as_deref() == Some(phc.as_str()) {
                    u.two_factor
                        .get_or_insert_with(TwoFactor::default)
                        .password_digest = Some(d.clone());
                }
                Ok(())
            })
            .await?;
    }
    Ok(true)
}

/// The digest verifier for `password`, bound to its hash `phc`.
pub async fn password_digest(hasher: &Hasher, password: &str, phc: &str) -> Result<PasswordDigest> {
    let hex = sha256_hex(password.as_bytes());
    Ok(PasswordDigest {
        phc: hasher.hash(hex).await?,
        for_password: sha256(phc.as_bytes()),
    })
}

/// 2FA state for a user whose password was just hashed to `phc`, so the digest form works from the start.
pub async fn for_new_password(hasher: &Hasher, password: &str, phc: &str) -> Result<TwoFactor> {
    Ok(TwoFactor {
        password_digest: Some(password_digest(hasher, password, phc).await?),
        ..TwoFactor::default()
    })
}

/// Starts TOTP enrolment with a fresh seed (replacing an unconfirmed one). Refused while TOTP is on, so a stolen
/// session cannot silently swap the seed.
pub async fn enable(ctx: Factors<'_>, user: &User) -> Result<Enrolment, Failure> {
    if user.totp_active() {
        return Err(Failure::AlreadyEnabled);
    }
    let seed = crypto::random_bytes::<SEED_BYTES>().to_vec();
    let sealed = ctx.sealer.seal(&seed, &seed_aad(&user.id));
    ctx.store
        .update_user(&user.id, |u| {
            let t = u.two_factor.get_or_insert_with(TwoFactor::default);
            if t.totp_active() {
                return Err(Error::NotAllowed(Rule::TotpAlreadyEnabled));
            }
            t.totp_secret = Some(sealed.clone());
            t.totp_enabled = false;
            t.backup_codes.clear();
            // Steps of an old seed say nothing about the new one.
            t.last_totp_step = 0;
            Ok(())
        })
        .await
        .map_err(|e| match e {
            Error::NotAllowed(Rule::TotpAlreadyEnabled) => Failure::AlreadyEnabled,
            e => Failure::Other(e),
        })?;
    let t = totp(seed, &user.username);
    Ok(Enrolment {
        secret: t.get_secret_base32(),
        url: t.get_url(),
    })
}

/// Confirms the pending seed with a code from it; returns the backup codes, shown once.
pub async fn confirm(ctx: Factors<'_>, user: &User, code: &str) -> Result<Vec<String>, Failure> {
    let pending = user
        .two_factor
        .as_ref()
        .filter(|t| !t.totp_enabled)
        .and_then(|t| t.totp_secret.clone());
    let Some(sealed) = pending else {
        return Err(Failure::NothingPending);
    };
    let seed = open_seed(ctx, user)?.unwrap_or_default();
    let step = totp_step(ctx, user, seed, code);
    throttled(ctx, user, Method::Totp, async { Ok(step.is_some()) }).await?;
    let step = step.unwrap_or_default();
    let codes: Vec<String> = (0..BACKUP_CODES)
        .map(|_| crypto::random_id()[..8].to_owned())
        .collect();
    let hashed: Vec<[u8; 32]> = codes.iter().map(|c| sha256(c.as_bytes())).collect();
    ctx.store
        .update_user(&user.id, |u| {
            let t = u.two_factor.get_or_insert_with(TwoFactor::default);
            // A concurrent `enable` may have replaced the seed this code was checked against.
            if t.totp_secret.as_ref() != Some(&sealed) || t.totp_enabled {
                return Err(Error::NotFound(Entity::TotpEnrolment));
            }
            t.totp_enabled = true;
            t.backup_codes = hashed.clone();
            // The confirming code is used: it does not pass a *2FA* route afterwards.
            t.last_totp_step = step;
            Ok(())
        })
        .await
        .map_err(|e| match e {
            Error::NotFound(Entity::TotpEnrolment) => Failure::NothingPending,
            e => Failure::Other(e),
        })?;
    Ok(codes)
}

/// Turns TOTP off after a valid TOTP or backup code.
pub async fn disable(ctx: Factors<'_>, user: &User, code: &str) -> Result<(), Failure> {
    if !user.totp_active() {
        return Err(Failure::NotEnabled);
    }
    throttled(
        ctx,
        user,
        Method::Totp,
        verify_totp_or_backup(ctx, user, code),
    )
    .await?;
    ctx.store
        .update_user(&user.id, |u| {
            if let Some(t) = u.two_factor.as_mut() {
                t.totp_secret = None;
                t.totp_enabled = false;
                t.backup_codes.clear();
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// The code of a base32 seed at `unix_secs`, as an authenticator app shows it (for tests and tools).
pub fn code_at(secret_base32: &str, unix_secs: u64) -> Option<String> {
    let seed = totp_rs::Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .ok()?;
    Some(totp(seed, "x").generate(unix_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B, SHA-1 seed "12345678901234567890", T = 59 → 94287082 (8 digits); 6 digits: 287082.
        let seed = b"12345678901234567890".to_vec();
        assert_eq!(totp(seed.clone(), "a").generate(59), "287082");
        assert!(totp(seed.clone(), "a").check("287082", 59 + 30), "skew 1");
        assert!(!totp(seed, "a").check("287082", 59 + 90));
    }

    #[test]
    fn url_and_base32() {
        let t = totp(vec![0u8; 20], "jane");
        assert_eq!(t.get_secret_base32(), "A".repeat(32));
        assert_eq!(
            t.get_url(),
            format!(
                "otpauth://totp/Latchkey:jane?secret={}&issuer=Latchkey",
                "A".repeat(32)
            )
        );
        assert_eq!(code_at(&"A".repeat(32), 59).unwrap().len(), 6);
    }

    async fn reload(w: &crate::core::testing::World, u: &User) -> User {
        w.store.get_user(&u.id).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_totp_code_passes_once_and_a_backup_code_once() {
        let w = crate::core::testing::World::new().await;
        let jane = w.user("jane", &["user"]).await;
        let code_now = |secret: &str| code_at(secret, now_secs(&w.clock)).unwrap();
        let enrolment = enable(w.factors(), &jane).await.unwrap();
        let jane = reload(&w, &jane).await;
        let backup = confirm(w.factors(), &jane, &code_now(&enrolment.secret))
            .await
            .unwrap();
        let jane = reload(&w, &jane).await;
        assert!(jane.totp_active());
        assert!(matches!(
            enable(w.factors(), &jane).await,
            Err(Failure::AlreadyEnabled)
        ));
        // The confirming code is used up; the password no longer counts as the second factor.
        let replay = check(
            w.factors(),
            &jane,
            Some(&code_now(&enrolment.secret)),
            Fallback::Configured,
        )
        .await;
        assert!(
            matches!(replay, Err(Failure::Invalid(Method::Totp))),
            "{replay:?}"
        );
        let pw = check(w.factors(), &jane, Some("password1"), Fallback::Always).await;
        assert!(matches!(pw, Err(Failure::Invalid(Method::Totp))), "{pw:?}");
        w.clock.advance(30_000);
        check(
            w.factors(),
            &jane,
            Some(&code_now(&enrolment.secret)),
            Fallback::Configured,
        )
        .await
        .unwrap();
        let jane = reload(&w, &jane).await;
        check(w.factors(), &jane, Some(&backup[0]), Fallback::Configured)
            .await
            .unwrap();
        let jane = reload(&w, &jane).await;
        let again = check(w.factors(), &jane, Some(&backup[0]), Fallback::Configured).await;
        assert!(
            matches!(again, Err(Failure::Invalid(Method::Totp))),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn without_totp_the_password_is_asked_only_where_the_fallback_applies() {
        let w = crate::core::testing::World::new().await;
        let jane = w.user("jane", &["user"]).await;
        check(w.factors(), &jane, None, Fallback::Never)
            .await
            .unwrap();
        let off = Factors {
            password_fallback: false,
            ..w.factors()
        };
        check(off, &jane, None, Fallback::Configured).await.unwrap();
        let required = check(w.factors(), &jane, None, Fallback::Configured).await;
        assert!(matches!(required, Err(Failure::Required(Method::Password))));
        let hex = sha256_hex(b"password1");
        check(w.factors(), &jane, Some(&hex), Fallback::Always)
            .await
            .unwrap();
        let wrong = check(w.factors(), &jane, Some("nope"), Fallback::Always).await;
        assert!(matches!(wrong, Err(Failure::Invalid(Method::Password))));
    }

    #[test]
    fn digest_shape() {
        assert!(is_sha256_hex(&sha256_hex(b"pw")));
        assert!(is_sha256_hex(&sha256_hex(b"pw").to_uppercase()));
        assert!(!is_sha256_hex("abc"));
    }
}
