//! Assembling and running a gateway: store, upstream client, central control, the
//! background refresher and the HTTP server, with graceful shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::auth::users::Users;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::CentralControl;
use crate::error::{Error, Result};
use crate::http::{self, AppState, Shared};
use crate::push::handler::Handler;
use crate::push::PushService;
use crate::store;
use crate::upstream::Upstream;
use crate::web::context::Context;
use crate::web::limit::Limits;
use crate::web::Ctx;

/// Builds the shared state of a gateway (opens the store).
pub async fn build(config: Config, clock: Clock) -> Result<AppState> {
    build_with(config, clock, HashMap::new()).await
}

/// Like [`build`], with message handlers of an embedding program, by account name; they
/// run after the configured rules and before the webhook.
pub async fn build_with(
    config: Config,
    clock: Clock,
    handlers: HashMap<String, Vec<Arc<dyn Handler>>>,
) -> Result<AppState> {
    let store = store::open(&config.store, &config.data_dir).await?;
    build_on(config, clock, &handlers, store)
}

/// The state of a gateway on a store already open: what a reload builds, keeping the
/// store (an embedded store cannot be opened twice, a Redis one keeps its connections).
fn build_on(
    config: Config,
    clock: Clock,
    handlers: &HashMap<String, Vec<Arc<dyn Handler>>>,
    store: store::SharedStore,
) -> Result<AppState> {
    crate::metrics::install();
    crate::metrics::set_per_account_labels(config.metrics.per_account_labels);
    metrics::gauge!("wxgate_credential_daily_quota").set(config.credentials.daily_quota as f64);
    let upstream = Upstream::new(&config.upstream)?;
    let credentials = Arc::new(CentralControl::new(
        store.clone(),
        upstream.clone(),
        clock.clone(),
        config.credentials.clone(),
        &config.accounts,
    ));
    let components = Arc::new(crate::component::ComponentService::new(
        &config,
        store.clone(),
        upstream.clone(),
        credentials.owner(),
    )?);
    // The central control asks the components for their authorizers' credentials.
    credentials.set_delegate(Arc::new(crate::component::acting::Acting {
        components: components.clone(),
        clock: clock.clone(),
    }));
    // The release test answers first in each component's chain (when on).
    let mut handlers = handlers.clone();
    for (name, c) in &config.components {
        if c.release_test {
            let release: Arc<dyn Handler> = Arc::new(crate::component::release::ReleaseTest {
                component: name.clone(),
                components: components.clone(),
                clock: clock.clone(),
            });
            handlers
                .entry(crate::push::component_account(name))
                .or_default()
                .insert(0, release);
        }
    }
    let pushes = Arc::new(PushService::new(&config, &credentials, handlers, |name| {
        Arc::new(crate::component::service::AuthorizerCustomerService {
            components: components.clone(),
            component: name.to_owned(),
            clock: clock.clone(),
        })
    })?);
    let users = Arc::new(Users::new(credentials.clone(), config.auth.clone()));
    let pay = Arc::new(crate::pay::PayService::new(&config)?);
    let ctx = Ctx::new(Context {
        limits: Limits::new(&config.rate_limit),
        config: Arc::new(config),
        store,
        clock,
        upstream,
        credentials,
    });
    let console = crate::console::Console::new(&ctx);
    Ok(AppState::new(Shared {
        ctx,
        pushes,
        pay,
        components,
        users,
        compat: Default::default(),
        console,
    }))
}

/// The background work of one generation of the configuration: the credential
/// refresher, the user sweep, the limits' upkeep and the console's sampler, stopped
/// when a reload replaces the generation or the gateway stops.
fn spawn_generation(state: &AppState, stop: &watch::Sender<bool>) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        crate::metrics::spawn_upkeep(stop.subscribe()),
        state.ctx.credentials.spawn_refresher(stop.subscribe()),
        state.users.spawn_sweeper(
            crate::auth::sweep_accounts(&state.ctx.config),
            stop.subscribe(),
        ),
        {
            let s = state.clone();
            crate::util::spawn_periodic(
                std::time::Duration::from_secs(60),
                stop.subscribe(),
                move || {
                    let s = s.clone();
                    async move {
                        s.ctx.limits.forget_idle();
                        crate::sampled::flush();
                    }
                },
            )
        },
    ];
    if state.components.components().next().is_some() {
        // The open platform's ticket: at a cold start with none, or when the newest is
        // too old, the fleet asks WeChat for a push (rationed in the store).
        let s = state.clone();
        tasks.push(crate::util::spawn_periodic(
            std::time::Duration::from_secs(c_round_secs(&state.ctx.config)),
            stop.subscribe(),
            move || {
                let s = s.clone();
                async move {
                    for c in s.components.components() {
                        let now = s.ctx.now();
                        if let Err(e) = s.components.keep_ticket_fresh(c, now).await {
                            crate::sampled_warn!("component_ticket", component = %c.name, error = %e, "could not ask for a component_verify_ticket push");
                        }
                        // Tokens ahead of their end: the component's, then the
                        // authorizers' that came due (a round takes up to 2,000).
                        s.components.refresh_due(c, now, 2000).await;
                    }
                }
            },
        ));
    }
    if let Some(console) = &state.console {
        tasks.extend(console.spawn(state.ctx.clone(), stop.subscribe()));
    }
    tasks
}

/// How often the open platform's keeper runs: `credentials.check_interval_ms`, at most
/// every 30 s (tests shorten it).
fn c_round_secs(config: &crate::config::Config) -> u64 {
    (config.credentials.check_interval_ms / 1000).clamp(1, 30)
}

/// What a reload changed: accounts added, removed and changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl std::fmt::Display for Reloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        write!(
            f,
            "added {}; removed {}; changed {}",
            list(&self.added),
            list(&self.removed),
            list(&self.changed)
        )
    }
}

/// A running gateway. Dropping it stops it (without waiting); [`Running::stop`] waits.
pub struct Running {
    pub addr: SocketAddr,
    /// The WeChat-compatible API's own address, when `compat.listen` gives it one.
    pub compat_addr: Option<SocketAddr>,
    /// The state it started with ([`Running::current`] after a reload).
    pub state: AppState,
    inner: Arc<Generations>,
    shutdown: Option<oneshot::Sender<()>>,
    stop_tasks: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

/// The generations of a running gateway's configuration: the one in service, what a
/// reload needs to build the next, and the background work of each.
pub(crate) struct Generations {
    live: http::hot::SharedLive,
    clock: Clock,
    handlers: HashMap<String, Vec<Arc<dyn Handler>>>,
    /// The configuration as the file gives it (accounts kept in the store are added to
    /// it; see [`crate::fleet_accounts`]).
    file: std::sync::Mutex<Config>,
    /// The store's accounts document last applied.
    applied_store_accounts: std::sync::Mutex<Option<String>>,
    /// Stops the background work of the generation in service.
    generation: std::sync::Mutex<watch::Sender<bool>>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Held through a whole reload: a file reload and a change of the store's accounts
    /// at the same moment would otherwise each build on the other's old half, and the
    /// one swapped in last would miss the other's change.
    applying: std::sync::Mutex<()>,
}

impl Running {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The state in service now.
    pub fn current(&self) -> AppState {
        self.inner.current()
    }

    /// Applies a new configuration file without a restart: accounts added start (their
    /// tokens fetched, or read from the store), removed ones stop refreshing and answer
    /// 404, changed secrets, keys, modes and rules take effect. Built beside the one in
    /// service on the same store, then swapped in at once: a request in flight finishes
    /// on the configuration it started with, and the next one sees the new. Refused,
    /// with the running configuration kept, when it cannot be built or changes what
    /// only a restart can (`listen`, `data_dir`, `[store]`, `[server]`,
    /// `compat.listen`). Accounts kept in the store stay. Rate-limit and push-memory
    /// counts start afresh.
    pub fn reload(&self, config: Config) -> Result<Reloaded> {
        self.inner.reload_file(config)
    }

    /// Graceful stop: no new connections, in-flight requests finish, the background tasks
    /// finish their current run (so refresh locks are released, not left to their lease).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.stop_background();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        let tasks = self
            .inner
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), t).await;
        }
    }

    fn stop_background(&self) {
        let _ = self.stop_tasks.send(true);
        if let Ok(g) = self.inner.generation.lock() {
            let _ = g.send(true);
        }
    }
}

impl Generations {
    fn current(&self) -> AppState {
        self.live.load().state.clone()
    }

    fn reload_file(&self, config: Config) -> Result<Reloaded> {
        let _applying = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        let store_doc = self
            .applied_store_accounts
            .lock()
            .ok()
            .and_then(|d| d.clone());
        let merged = crate::fleet_accounts::merged(&config, store_doc.as_deref())?;
        let what = self.apply(merged)?;
        if let Ok(mut f) = self.file.lock() {
            *f = config;
        }
        Ok(what)
    }

    /// Applies the store's accounts document `doc` (its text), merged into the file's
    /// configuration, if it changed since the last one applied.
    fn apply_store_accounts(&self, doc: Option<String>) -> Result<Option<Reloaded>> {
        let _applying = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        if self.applied_store_accounts.lock().is_ok_and(|d| *d == doc) {
            return Ok(None);
        }
        let file = match self.file.lock() {
            Ok(f) => f.clone(),
            Err(_) => return Ok(None),
        };
        let merged = crate::fleet_accounts::merged(&file, doc.as_deref())?;
        let what = self.apply(merged)?;
        if let Ok(mut d) = self.applied_store_accounts.lock() {
            *d = doc;
        }
        Ok(Some(what))
    }

    fn apply(&self, config: Config) -> Result<Reloaded> {
        let current = self.current();
        let old = &current.ctx.config;
        let fixed = [
            ("listen", old.listen != config.listen),
            ("data_dir", old.data_dir != config.data_dir),
            ("[store]", old.store != config.store),
            ("[server]", old.server != config.server),
            ("compat.listen", old.compat.listen != config.compat.listen),
        ];
        let needs_restart: Vec<&str> = fixed.iter().filter(|(_, c)| *c).map(|(n, _)| *n).collect();
        if !needs_restart.is_empty() {
            return Err(Error::Config(format!(
                "reload refused: {} change(s) only at a restart; the running configuration stays",
                needs_restart.join(", ")
            )));
        }
        let mut what = Reloaded::default();
        for (name, acc) in &config.accounts {
            match old.accounts.get(name) {
                None => what.added.push(name.clone()),
                Some(before) if before != acc => what.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        what.removed = old
            .accounts
            .keys()
            .filter(|n| !config.accounts.contains_key(*n))
            .cloned()
            .collect();
        let state = build_on(
            config,
            self.clock.clone(),
            &self.handlers,
            current.ctx.store.clone(),
        )?;
        let (stop, _) = watch::channel(false);
        let tasks = spawn_generation(&state, &stop);
        self.live.store(Arc::new(http::hot::Live::new(state)));
        let previous = match self.generation.lock() {
            Ok(mut g) => std::mem::replace(&mut *g, stop),
            Err(_) => return Err(Error::Config("reload: a previous reload panicked".into())),
        };
        let _ = previous.send(true);
        if let Ok(mut t) = self.tasks.lock() {
            t.retain(|h| !h.is_finished());
            t.extend(tasks);
        }
        metrics::counter!("wxgate_reloads_total").increment(1);
        tracing::info!(%what, "configuration reloaded");
        Ok(what)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.stop_background();
        if let Ok(t) = self.inner.tasks.lock() {
            for t in t.iter() {
                t.abort();
            }
        }
    }
}

/// Starts a gateway on `listener` with its background tasks (credential refresher, user
/// sweep).
pub async fn start_on(listener: TcpListener, state: AppState) -> Result<Running> {
    start_with_handlers(listener, state, HashMap::new()).await
}

/// [`start_on`], remembering the embedding program's handlers for reloads.
pub async fn start_with_handlers(
    listener: TcpListener,
    state: AppState,
    handlers: HashMap<String, Vec<Arc<dyn Handler>>>,
) -> Result<Running> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("listener: {e}")))?;
    let (stop_tasks, _) = watch::channel(false);
    let (generation, _) = watch::channel(false);
    let mut tasks = spawn_generation(&state, &generation);
    let live: http::hot::SharedLive = Arc::new(arc_swap::ArcSwap::from_pointee(
        http::hot::Live::new(state.clone()),
    ));
    let app = http::hot::App::new(live.clone());
    let limits = state.ctx.config.server.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(http::serve::serve(listener, app, limits.clone(), async {
        let _ = rx.await;
    }));
    let mut compat_addr = None;
    if let (true, Some(listen)) = (
        state.ctx.config.compat.enabled,
        state.ctx.config.compat.listen.clone(),
    ) {
        let compat_listener = TcpListener::bind(&listen)
            .await
            .map_err(|e| Error::Config(format!("compat.listen on {listen}: {e}")))?;
        compat_addr = compat_listener.local_addr().ok();
        let app = http::hot::App::compat_only(live.clone());
        let mut stopped = stop_tasks.subscribe();
        tasks.push(tokio::spawn(http::serve::serve(
            compat_listener,
            app,
            limits,
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        )));
    }
    let inner = Arc::new(Generations {
        live,
        clock: state.ctx.clock.clone(),
        handlers,
        file: std::sync::Mutex::new((*state.ctx.config).clone()),
        applied_store_accounts: std::sync::Mutex::new(None),
        generation: std::sync::Mutex::new(generation),
        tasks: std::sync::Mutex::new(Vec::new()),
        applying: std::sync::Mutex::new(()),
    });
    tasks.push(crate::fleet_accounts::spawn_watch(
        inner.clone(),
        state.ctx.store.clone(),
        std::time::Duration::from_millis(state.ctx.config.api.accounts_poll_ms.max(100)),
        stop_tasks.subscribe(),
    ));
    if let Ok(mut t) = inner.tasks.lock() {
        t.extend(tasks);
    }
    Ok(Running {
        addr,
        compat_addr,
        state,
        inner,
        shutdown: Some(tx),
        stop_tasks,
        server: Some(server),
    })
}

/// Builds and starts a gateway on its configured `listen` address.
pub async fn start(config: Config, clock: Clock) -> Result<Running> {
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| Error::Config(format!("listen on {}: {e}", config.listen)))?;
    start_on(listener, build(config, clock).await?).await
}

/// What the store's accounts watcher drives.
impl crate::fleet_accounts::Apply for Generations {
    fn apply_store_accounts(&self, doc: Option<String>) -> Result<Option<String>> {
        Generations::apply_store_accounts(self, doc).map(|w| w.map(|w| w.to_string()))
    }
}
