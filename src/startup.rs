//! Build the state, run migrations, bind (port 0 allowed), serve, shut down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::crypto::PasswordHasher;
use crate::keyring::Keyring;
use crate::oauth::Provider;
use crate::store::{self, Store};
use crate::web;
use crate::web::state::{AppState, CookieNames};

/// How often expired codes, sessions and deny-list entries are deleted.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(300);

pub struct Application {
    listener: TcpListener,
    state: AppState,
    keyring: Arc<Keyring>,
    /// SQLite: held while serving, so a second server on the same file is noticed.
    single_node: Option<store::ServerLock>,
}

/// Connect to the configured database and apply migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(
        settings.database_url.expose(),
        settings.database_max_connections,
        crate::config::ServerSettings::secs(settings.database_acquire_timeout_secs),
    )
    .await
    .context("cannot open the database (check database_url)")?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    report_email_backfill(store.as_ref()).await?;
    Ok(store)
}

/// Give rows from before migration 0013 their canonical address, and say which could not have
/// one: such an account cannot be found by address until an administrator changes its address
/// (or the other account's) — see docs/admin.md. Never fails the start for that.
async fn report_email_backfill(store: &dyn Store) -> anyhow::Result<()> {
    let issues = store
        .backfill_email_canonical()
        .await
        .context("cannot fill users.email_canonical")?;
    for issue in issues {
        match issue {
            store::EmailBackfillIssue::Duplicate { user_id, holder } => tracing::error!(
                user.id = %user_id,
                holder.id = %holder,
                "this account's e-mail address is, canonically, the older account's: it cannot \
                 be found by address until an administrator gives one of them another address"
            ),
            store::EmailBackfillIssue::Invalid { user_id } => tracing::error!(
                user.id = %user_id,
                "this account's stored e-mail address is not valid any more: it cannot be found \
                 by address until an administrator sets a new one"
            ),
        }
    }
    Ok(())
}

impl Application {
    /// Bind `settings.bind` and build everything.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("cannot listen on {} (check bind)", settings.bind))?;
        Self::with_listener(settings, listener).await
    }

    /// Build on an already bound listener (tests bind port 0 first to learn the issuer URL).
    pub async fn with_listener(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        // Before the database is touched: a missing key-encryption key changes nothing.
        crate::keyring::kek_for(&settings).context("cannot load signing keys")?;
        let store = open_store(&settings).await?;
        let keyring = Keyring::open(&settings, store.clone())
            .await
            .context("cannot load signing keys")?;
        let csrf_key = keyring
            .csrf_key()
            .await
            .context("cannot load the CSRF key")?;
        // Only a server that is going to serve looks for another one on its SQLite file.
        let single_node = store::lock_for_serving(settings.database_url.expose());
        let hasher = PasswordHasher::new(&settings.argon2).context("invalid argon2 parameters")?;
        let discovery = serde_json::to_vec(&crate::oidc::discovery::metadata(&settings))
            .context("cannot serialise discovery")?;
        let templates = web::render::Templates::load().context("cannot compile templates")?;
        let cookies = CookieNames::for_issuer(settings.is_https());
        let sms = crate::sms::from_settings(&settings.sms)
            .context("cannot set up SMS (check the [sms] settings)")?;
        let clock = crate::clock::Clock::default();
        let mailer = crate::email::Mailer::new(&settings.mail, sms, clock.clone())
            .context("cannot set up mail (check the [mail] settings)")?;
        // Installed before the first request, so none goes uncounted.
        crate::observability::exporter();
        let limits =
            crate::accounts::RateLimits::new(&settings.rate_limit, store.clone(), clock.clone());
        let provider = Provider {
            settings: Arc::new(settings),
            store,
            keys: keyring.keys(),
            hasher,
            logout_wake: Arc::new(tokio::sync::Notify::new()),
            clients: Arc::default(),
            clock,
        };
        let mailer = Arc::new(mailer);
        let accounts = crate::accounts::Accounts {
            provider: provider.clone(),
            mailer: mailer.clone(),
            limits: Arc::new(limits),
        };
        Ok(Self {
            listener,
            single_node,
            state: AppState {
                provider,
                templates: Arc::new(templates),
                discovery: discovery.into(),
                csrf_key: Arc::new(csrf_key),
                cookies,
                mailer,
                accounts,
            },
            keyring: Arc::new(keyring),
        })
    }

    /// Where the signing keys live (tests reload and rotate through it).
    pub fn keyring(&self) -> Arc<Keyring> {
        self.keyring.clone()
    }

    /// The protocol core (settings, store, keys), e.g. for tests that seed data.
    pub fn provider(&self) -> &Provider {
        &self.state.provider
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown` resolves, then finish in-flight requests and close the pool.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let single_node = self.single_node;
        let store = self.state.provider.store.clone();
        let housekeeping = tokio::spawn(housekeeping(
            self.state.provider.clone(),
            self.keyring.clone(),
        ));
        let changes = tokio::spawn(watch_changes(self.state.provider.clone()));
        let backchannel = tokio::spawn(crate::oidc::backchannel::run(self.state.provider.clone()));
        // Registered before serving, so a SIGHUP never meets the default action (terminate).
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let key_watch = tokio::spawn(watch_keys(self.keyring.clone(), hup));
        let mail_worker = tokio::spawn(crate::email::run_worker(
            store.clone(),
            self.state.mailer.clone(),
        ));
        let metrics_upkeep = tokio::spawn(metrics_upkeep());
        let limits = web::serve::Limits::from_settings(&self.state.provider.settings.server);
        let app = web::router(self.state);
        tracing::info!(addr = %self.listener.local_addr()?, "portcullis listening");
        let result = web::serve::serve(self.listener, app, limits, shutdown).await;
        housekeeping.abort();
        changes.abort();
        backchannel.abort();
        key_watch.abort();
        mail_worker.abort();
        metrics_upkeep.abort();
        store.close().await;
        drop(single_node);
        tracing::info!("portcullis stopped");
        result
    }

    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// Hear other nodes' writes (PostgreSQL): the store keeps its deny-list mirror current and
/// passes client changes on to the client cache.
async fn watch_changes(provider: Provider) {
    let clients = provider.clients.clone();
    let sink: store::ChangeSink = Arc::new(move |change| clients.on_change(change));
    provider.store.watch_changes(sink).await;
}

/// Delivered or abandoned mail is kept this long (seconds) for support, then deleted.
const MAIL_RETENTION: i64 = 7 * 86_400;
/// Bodies of delivered or abandoned mail (one-time codes and links in the clear) are blanked this
/// long (seconds) after they finished; the headers stay for support until `MAIL_RETENTION`.
const MAIL_BODY_RETENTION: i64 = 600;

async fn housekeeping(provider: Provider, keyring: Arc<Keyring>) {
    let store = provider.store.clone();
    // The first pass comes one period after start, not at once: a start (or a burst of restarts)
    // does not add database work, and nothing here is urgent. Every pass is idempotent.
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + HOUSEKEEPING_EVERY,
        HOUSEKEEPING_EVERY,
    );
    loop {
        tick.tick().await;
        // Several nodes: one pass at a time (each pass is idempotent, so this only saves work
        // and lock contention).
        let _turn = match store.housekeeping_lock().await {
            Ok(Some(turn)) => turn,
            Ok(None) => {
                tracing::debug!("housekeeping running on another node; skipped");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "housekeeping skipped: database unavailable");
                continue;
            }
        };
        let now = provider.clock.now();
        run_housekeeping(store.as_ref(), &provider.settings, now).await;
        if provider.settings.keys_auto_prune {
            prune_keys(&provider, &keyring, now).await;
        }
    }
}

/// One housekeeping pass: expired rows and refresh-token families, old outbox mail (bodies
/// blanked `MAIL_BODY_RETENTION` after delivery, rows deleted after `MAIL_RETENTION`), audit
/// entries past `audit.retention_days`, finished rate-limit windows, expired known devices, and
/// accounts deleted longer than `accounts.deletion_grace_period` ago (their personal data goes
/// for good). Errors are logged; the next pass retries.
pub async fn run_housekeeping(store: &dyn Store, settings: &Settings, now: i64) {
    const DAY: i64 = 86_400;
    match store.purge_expired(now).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(rows = n, "expired rows purged"),
        Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
    }
    match store.purge_refresh_tokens(now).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(rows = n, "expired refresh-token families purged"),
        Err(e) => tracing::warn!(error = %e, "refresh-token purge failed; will retry"),
    }
    if let Err(e) = store.purge_mail_before(now - MAIL_RETENTION).await {
        tracing::warn!(error = %e, "mail outbox cleanup failed; will retry");
    }
    if let Err(e) = store.scrub_mail_bodies(now - MAIL_BODY_RETENTION).await {
        tracing::warn!(error = %e, "mail body scrub failed; will retry");
    }
    if settings.audit.retention_days > 0 {
        match store
            .purge_audit_before(now - settings.audit.retention_days * DAY)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "audit entries past retention deleted"),
            Err(e) => tracing::warn!(error = %e, "audit retention failed; will retry"),
        }
    }
    let failure_windows_before = now - settings.rate_limit.login_failure_window;
    match store
        .purge_limits(failure_windows_before, now.saturating_mul(1000))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::debug!(rows = n, "finished rate-limit windows purged"),
        Err(e) => tracing::warn!(error = %e, "rate-limit purge failed; will retry"),
    }
    match store.purge_devices(now).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(devices = n, "expired known devices purged"),
        Err(e) => tracing::warn!(error = %e, "known-device purge failed; will retry"),
    }
    match store
        .purge_deleted_users(now - settings.accounts.deletion_grace_period)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(users = n, "deleted accounts purged after the grace period"),
        Err(e) => tracing::warn!(error = %e, "purge of deleted accounts failed; will retry"),
    }
}

/// `keys prune`, run by housekeeping; the key watcher then drops the keys from the JWKS.
async fn prune_keys(provider: &Provider, keyring: &Keyring, now: i64) {
    let clients = match provider.store.list_clients().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "key prune skipped: cannot list clients");
            return;
        }
    };
    let retention = crate::oauth::key_retention(&provider.settings, &clients);
    match keyring.prune(retention, now).await {
        Ok(removed) => {
            for k in removed {
                tracing::info!(kid = %k.kid, alg = %k.alg, "retired signing key removed");
            }
        }
        Err(e) => tracing::warn!(error = %e, "key prune failed; will retry"),
    }
}

/// Reload the signing keys when they change (`Keyring::reload_every`: every second from the
/// database, every `KEY_RELOAD_EVERY` from files) and at once on SIGHUP, so `keys rotate` and
/// `keys prune` take effect without a restart, on every node.
async fn watch_keys(keyring: Arc<Keyring>, mut hup: Option<tokio::signal::unix::Signal>) {
    let mut tick = tokio::time::interval(keyring.reload_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match hup.as_mut() {
            Some(h) => {
                tokio::select! {
                    _ = tick.tick() => {},
                    _ = h.recv() => tracing::info!("SIGHUP: reloading signing keys"),
                }
            }
            None => {
                tick.tick().await;
            }
        }
        match keyring.reload().await {
            Ok(true) => tracing::info!("signing keys reloaded"),
            Ok(false) => {}
            // A database outage is reported by the requests that need it; keep the keys.
            Err(crate::keyring::KeyringError::Store(e)) if e.is_unavailable() => {
                tracing::debug!(error = %e, "key reload skipped: database unavailable")
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reload signing keys; keeping the current set")
            }
        }
    }
}

/// Installs the metrics recorder, then folds histogram samples in periodically (scrapes do it
/// too; this bounds memory when nobody scrapes).
async fn metrics_upkeep() {
    let Some(exporter) = crate::observability::exporter() else {
        return;
    };
    let mut tick = tokio::time::interval(crate::observability::UPKEEP_EVERY);
    loop {
        tick.tick().await;
        exporter.upkeep();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
