//! Real Redis topologies on loopback ports, made the way an operator makes them: a
//! Cluster of 3 masters and 3 replicas (`redis-server --cluster-enabled yes`, then
//! `redis-cli --cluster create`) and a Sentinel group (a master, a replica, 3
//! sentinels). Each node can be killed to force a failover; everything is killed when
//! the value is dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, TempDir};

/// `redis-cli -p PORT ARGS...`, its output (empty when the node does not answer).
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("redis-cli runs (scripts/install-deps.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(args: &[String]) -> Child {
    Command::new("redis-server")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs (scripts/install-deps.sh installs it)")
}

/// Starts `redis-server` with the arguments `args` makes for a free port, and waits
/// until it listens. A port that was free when chosen may be taken by then (tests run
/// side by side, each starting servers): the server exits, and another port is tried.
fn start_listening(args: impl Fn(u16) -> Vec<String>) -> (u16, Child) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(&args(port));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (port, child);
            }
            if !matches!(child.try_wait(), Ok(None)) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("redis-server did not start on any of 5 free ports");
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A Redis Cluster: 3 masters and 3 replicas, a node timeout of 1 s.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    nodes: Vec<Option<Child>>,
    _dir: TempDir,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let dir = TempDir::new("redis-cluster");
        let (ports, nodes): (Vec<u16>, Vec<Option<Child>>) = (0..6)
            .map(|_| {
                let (port, child) = start_listening(|p| {
                    // The bus port is chosen too: port + 10000 may not exist or be free.
                    let bus = free_port();
                    vec![
                        "--port".into(),
                        p.to_string(),
                        "--cluster-port".into(),
                        bus.to_string(),
                        "--bind".into(),
                        "127.0.0.1".into(),
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        format!("nodes-{p}.conf"),
                        "--cluster-node-timeout".into(),
                        "1000".into(),
                        // An idle master pings its replica every 10 s by default, and a
                        // replica whose data looks that old refuses to take over: ping
                        // often, and let a replica always take over (as operators who
                        // prefer availability set it).
                        "--repl-ping-replica-period".into(),
                        "1".into(),
                        "--cluster-replica-validity-factor".into(),
                        "0".into(),
                        // A replica's first sync waits 5 s for company by default.
                        "--repl-diskless-sync-delay".into(),
                        "0".into(),
                        "--dir".into(),
                        dir.path().display().to_string(),
                        "--save".into(),
                        "".into(),
                        "--appendonly".into(),
                        "no".into(),
                    ]
                });
                (port, Some(child))
            })
            .unzip();
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let c = RedisCluster {
            ports,
            nodes,
            _dir: dir,
        };
        c.wait_healthy();
        // The cluster says ok before the replicas have their first copy: a failover
        // then would lose what was written.
        until(
            "every replica to be in sync",
            Duration::from_secs(30),
            || {
                let masters: Vec<u16> = c
                    .ports
                    .iter()
                    .copied()
                    .filter(|p| redis_cli(*p, &["role"]).starts_with("master"))
                    .collect();
                masters.len() == 3
                    && masters.iter().all(|p| {
                        let r = redis_cli(*p, &["info", "replication"]);
                        r.contains("connected_slaves:1") && r.contains("state=online")
                    })
            },
        );
        c
    }

    /// `redis://127.0.0.1:PORT` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The `[store]` settings of a gateway on this cluster.
    pub fn store_toml(&self) -> String {
        let nodes: Vec<String> = self.urls().iter().map(|u| format!("\"{u}\"")).collect();
        format!(
            "kind = \"redis\"\n\n[store.cluster]\nnodes = [{}]",
            nodes.join(", ")
        )
    }

    fn alive(&self) -> impl Iterator<Item = u16> + '_ {
        self.ports
            .iter()
            .zip(&self.nodes)
            .filter(|(_, n)| n.is_some())
            .map(|(p, _)| *p)
    }

    /// Every live node says the cluster is ok and all 16384 slots are served.
    pub fn wait_healthy(&self) {
        until("the cluster to be ok", Duration::from_secs(30), || {
            self.alive().all(|p| {
                let info = redis_cli(p, &["cluster", "info"]);
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            })
        });
    }

    /// The port of the master serving `key`'s slot, as a live node sees it.
    pub fn master_of(&self, key: &str) -> u16 {
        let any = self.alive().next().unwrap();
        let slot: u16 = redis_cli(any, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .unwrap();
        for line in redis_cli(any, &["cluster", "nodes"]).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let port: u16 = f[1]
                .split(['@', ','])
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .unwrap();
            for range in &f[8..] {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    if (a..=b).contains(&slot) {
                        return port;
                    }
                }
            }
        }
        panic!("no master serves slot {slot}");
    }

    /// Kills the node on `port` (SIGKILL: no goodbye to the cluster).
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).unwrap();
        kill(&mut self.nodes[i]);
    }

    /// Waits until the live nodes flag the killed master on `port` as failed and a
    /// replica serves its slots.
    pub fn wait_failover(&self, port: u16) {
        let addr = format!("127.0.0.1:{port}@");
        until(
            "the cluster to flag the dead master",
            Duration::from_secs(30),
            || {
                let any = self.alive().next().unwrap();
                redis_cli(any, &["cluster", "nodes"])
                    .lines()
                    .any(|l| l.contains(&addr) && l.contains("fail") && !l.contains("fail?"))
            },
        );
        self.wait_healthy();
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            kill(n);
        }
    }
}

/// A Sentinel group: a master, a replica, and 3 sentinels (quorum 2) that declare the
/// master down after 1 s.
pub struct RedisSentinel {
    pub master_name: &'static str,
    pub master: u16,
    pub replica: u16,
    pub sentinels: Vec<u16>,
    data: Vec<Option<Child>>,
    watchers: Vec<Option<Child>>,
    _dir: TempDir,
}

impl RedisSentinel {
    pub fn start() -> RedisSentinel {
        let dir = TempDir::new("redis-sentinel");
        let node = |port: u16, extra: &[String]| {
            let mut args: Vec<String> = vec![
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                "".into(),
                "--appendonly".into(),
                "no".into(),
                "--repl-diskless-sync-delay".into(),
                "0".into(),
                "--repl-ping-replica-period".into(),
                "1".into(),
                // A replica's full sync writes dump.rdb into its directory: the test's.
                "--dir".into(),
                dir.path().display().to_string(),
            ];
            args.extend_from_slice(extra);
            args
        };
        let (master, master_child) = start_listening(|p| node(p, &[]));
        let (replica, replica_child) = start_listening(|p| {
            node(
                p,
                &["--replicaof".into(), "127.0.0.1".into(), master.to_string()],
            )
        });
        let data = vec![Some(master_child), Some(replica_child)];
        until("the replica to sync", Duration::from_secs(20), || {
            redis_cli(replica, &["info", "replication"]).contains("master_link_status:up")
        });
        let master_name = "wxgate-master";
        let (sentinels, watchers): (Vec<u16>, Vec<Option<Child>>) = (0..3)
            .map(|_| {
                let (port, child) = start_listening(|port| {
                    // A sentinel rewrites its config file: each gets its own.
                    let conf = dir.path().join(format!("sentinel-{port}.conf"));
                    std::fs::write(
                        &conf,
                        format!(
                            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                             sentinel monitor {master_name} 127.0.0.1 {master} 2\n\
                             sentinel down-after-milliseconds {master_name} 1000\n\
                             sentinel failover-timeout {master_name} 5000\n\
                             sentinel parallel-syncs {master_name} 1\n",
                            dir = dir.path().display()
                        ),
                    )
                    .unwrap();
                    vec![conf.display().to_string(), "--sentinel".into()]
                });
                (port, Some(child))
            })
            .unzip();
        let s = RedisSentinel {
            master_name,
            master,
            replica,
            sentinels,
            data,
            watchers,
            _dir: dir,
        };
        until(
            "the sentinels to know each other and the replica",
            Duration::from_secs(30),
            || {
                s.sentinels.iter().all(|p| {
                    let m = redis_cli(*p, &["sentinel", "master", master_name]);
                    let field = |name: &str| {
                        let lines: Vec<&str> = m.lines().collect();
                        lines
                            .iter()
                            .position(|l| *l == name)
                            .and_then(|i| lines.get(i + 1))
                            .map(|v| v.to_string())
                    };
                    field("num-slaves").as_deref() == Some("1")
                        && field("num-other-sentinels").as_deref() == Some("2")
                })
            },
        );
        s
    }

    /// The `[store]` settings of a gateway on this group.
    pub fn store_toml(&self) -> String {
        let nodes: Vec<String> = self
            .sentinels
            .iter()
            .map(|p| format!("\"redis://127.0.0.1:{p}\""))
            .collect();
        format!(
            "kind = \"redis\"\n\n[store.sentinel]\nmaster_name = \"{}\"\nnodes = [{}]",
            self.master_name,
            nodes.join(", ")
        )
    }

    /// The master's port, as the first live sentinel names it.
    pub fn current_master(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|p| {
            let out = redis_cli(
                *p,
                &["sentinel", "get-master-addr-by-name", self.master_name],
            );
            out.lines().nth(1).and_then(|l| l.trim().parse().ok())
        })
    }

    /// Kills the master (SIGKILL) and waits until the sentinels name the replica.
    pub fn kill_master_and_wait_failover(&mut self) {
        kill(&mut self.data[0]);
        until(
            "the sentinels to promote the replica",
            Duration::from_secs(30),
            || {
                self.current_master() == Some(self.replica)
                    && redis_cli(self.replica, &["role"]).starts_with("master")
            },
        );
    }

    /// Kills the master without waiting.
    pub fn kill_master(&mut self) {
        kill(&mut self.data[0]);
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        for c in self.data.iter_mut().chain(self.watchers.iter_mut()) {
            kill(c);
        }
    }
}
