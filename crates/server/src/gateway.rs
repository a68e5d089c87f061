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
use crate::service::handler::Handler;
use crate::service::Service;
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
    crate::metrics::install();
    metrics::gauge!("wxgate_credential_daily_quota").set(config.credentials.daily_quota as f64);
    let store = store::open(&config.store, &config.data_dir).await?;
    let upstream = Upstream::new(&config.upstream)?;
    let credentials = Arc::new(CentralControl::new(
        store.clone(),
        upstream.clone(),
        clock.clone(),
        config.credentials.clone(),
        &config.accounts,
    ));
    let service = Arc::new(Service::new(&config, &credentials, handlers)?);
    let users = Arc::new(Users::new(credentials.clone(), config.auth.clone()));
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
        service,
        users,
        compat: Default::default(),
        console,
    }))
}

/// A running gateway. Dropping it stops it (without waiting); [`Running::stop`] waits.
pub struct Running {
    pub addr: SocketAddr,
    /// The WeChat-compatible API's own address, when `compat.listen` gives it one.
    pub compat_addr: Option<SocketAddr>,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    stop_tasks: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful stop: no new connections, in-flight requests finish, the background tasks
    /// finish their current run (so refresh locks are released, not left to their lease).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.stop_tasks.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        for t in std::mem::take(&mut self.tasks) {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), t).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.stop_tasks.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts a gateway on `listener` with its background tasks (credential refresher, user
/// sweep).
pub async fn start_on(listener: TcpListener, state: AppState) -> Result<Running> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("listener: {e}")))?;
    let (stop_tasks, stop) = watch::channel(false);
    let tasks = vec![
        crate::metrics::spawn_upkeep(stop.clone()),
        state.ctx.credentials.spawn_refresher(stop.clone()),
        state
            .users
            .spawn_sweeper(crate::auth::sweep_accounts(&state.ctx.config), stop.clone()),
        {
            let s = state.clone();
            crate::util::spawn_periodic(std::time::Duration::from_secs(60), stop, move || {
                let s = s.clone();
                async move {
                    s.ctx.limits.forget_idle();
                    crate::sampled::flush();
                }
            })
        },
    ];
    let mut tasks = tasks;
    if let Some(console) = &state.console {
        tasks.extend(console.spawn(state.ctx.clone(), stop_tasks.subscribe()));
    }
    let app = http::hot::App::new(state.clone());
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
        let app = http::hot::App::router_only(state.clone(), http::compat_router(state.clone()));
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
    Ok(Running {
        addr,
        compat_addr,
        state,
        shutdown: Some(tx),
        stop_tasks,
        server: Some(server),
        tasks,
    })
}

/// Builds and starts a gateway on its configured `listen` address.
pub async fn start(config: Config, clock: Clock) -> Result<Running> {
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| Error::Config(format!("listen on {}: {e}", config.listen)))?;
    start_on(listener, build(config, clock).await?).await
}
