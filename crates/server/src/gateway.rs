//! Assembling and running a gateway: store, upstream client, central control, the
//! background refresher and the HTTP server, with graceful shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::users::Users;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::CentralControl;
use crate::error::{Error, Result};
use crate::http::{self, AppState};
use crate::service::handler::Handler;
use crate::service::Service;
use crate::store;
use crate::upstream::Upstream;

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
    let upstream = Upstream::new(&config.upstream)?;
    let central = Arc::new(CentralControl::new(
        store,
        upstream,
        clock,
        config.credentials.clone(),
        &config.accounts,
    ));
    let service = Arc::new(Service::new(&config, &central, handlers)?);
    let users = Arc::new(Users::new(central.clone(), config.auth.clone()));
    Ok(AppState {
        config: Arc::new(config),
        central,
        service,
        users,
    })
}

/// A running gateway. Dropping it stops it.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    refresher: JoinHandle<()>,
    sweeper: JoinHandle<()>,
}

impl Running {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, and stops the refresher.
    pub async fn stop(mut self) {
        self.stop_now();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.refresher.abort();
        self.sweeper.abort();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Starts a gateway on `listener` with the background refresher.
pub async fn start_on(listener: TcpListener, state: AppState) -> Result<Running> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("listener: {e}")))?;
    let refresher = state.central.spawn_refresher();
    let sweeper = state
        .users
        .spawn_sweeper(crate::auth::sweep_accounts(&state.config));
    let app = http::router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(Running {
        addr,
        state,
        shutdown: Some(tx),
        server: Some(server),
        refresher,
        sweeper,
    })
}

/// Builds and starts a gateway on its configured `listen` address.
pub async fn start(config: Config, clock: Clock) -> Result<Running> {
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| Error::Config(format!("listen on {}: {e}", config.listen)))?;
    start_on(listener, build(config, clock).await?).await
}
