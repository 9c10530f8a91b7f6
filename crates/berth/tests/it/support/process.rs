//! Berth as a child process, for what an in-process server cannot show: `kill -9`, restarts
//! and the server's own memory use.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};

use berth_meta::TestDatabase;
use std::time::Duration;

pub struct BerthProcess {
    child: Child,
    pub base: String,
}

impl BerthProcess {
    /// Starts `berth serve` on 127.0.0.1:0 over `data_dir` (with the test superuser) and waits
    /// until it serves.
    pub fn spawn(data_dir: &Path) -> BerthProcess {
        ensure_admin(data_dir);
        let mut command = berth_command();
        command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
        BerthProcess::start(command)
    }

    /// Starts a prepared `berth serve` command and waits until it reports its address.
    pub fn start(mut command: Command) -> BerthProcess {
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("berth binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split_whitespace().find_map(|w| w.strip_prefix("addr=")) {
                    let _ = tx.send(addr.to_owned());
                }
                if std::env::var_os("BERTH_TEST_ECHO").is_some() {
                    eprintln!("[berth] {line}");
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).expect("berth reports its address");
        BerthProcess { child, base: format!("http://{addr}") }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.sigterm();
        self.wait()
    }

    /// SIGTERM, without waiting.
    pub fn sigterm(&self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
    }

    /// Waits for the process to exit.
    pub fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().expect("berth exits")
    }

    /// The process's peak resident set size (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status")
    }
}

/// Creates the test superuser in `data_dir` unless it exists already.
pub fn ensure_admin(data_dir: &Path) {
    use std::io::Write;
    let mut child = berth_command()
        .args(["admin", "create-user", super::ADMIN.0, "--superuser", "--password-stdin", "--data-dir"])
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth admin starts");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", super::ADMIN.1).expect("write password");
    drop(stdin);
    let output = child.wait_with_output().expect("berth admin runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() || stderr.contains("is taken"), "creating the test superuser failed: {stderr}");
}

/// The berth binary with logging at `info` and no inherited configuration; when the suite
/// runs on PostgreSQL, on this test's database.
pub fn berth_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command.env("BERTH_LOG", "info").env_remove("BERTH_LISTEN").env_remove("BERTH_DATA_DIR").env_remove("BERTH_CONFIG");
    match process_database() {
        Some(url) => command.env("BERTH_DATABASE_URL", url),
        None => command.env_remove("BERTH_DATABASE_URL"),
    };
    command
}

/// One PostgreSQL database for every process a test starts (a test runs in a process of its
/// own, and its servers restart on the same data), kept until the test process ends; the
/// next test database created drops it then.
fn process_database() -> Option<&'static str> {
    static DATABASE: OnceLock<Option<TestDatabase>> = OnceLock::new();
    if !super::on_postgres() {
        return None;
    }
    let database = DATABASE.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(TestDatabase::create())
        })
        .join()
        .expect("creating the test database")
    });
    database.as_ref().map(|db| db.url.as_str())
}

impl Drop for BerthProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
