//! PostgreSQL as the store of record (issue 17), against a real PostgreSQL server:
//! `HOTSPOT_TEST_PG` names one (a URL whose user may create databases; `scripts/test`
//! starts a throwaway server from Debian's packages and sets it, with
//! `HOTSPOT_REQUIRE_PG=1`). Without it these tests say so and pass, unless
//! `HOTSPOT_REQUIRE_PG=1`, when they fail. Each test gets a database of its own.
//!
//! - The store guarantees, differentially: one sequence of real and edited files (the
//!   sample's police.uk months, a reissued month, STATS19 vintages and an edited
//!   re-release, casualties, outcomes, stop and search, keyed and unkeyed partner CSVs,
//!   a file twice, a broken file) into SQLite and into PostgreSQL gives the same summary
//!   per file and the same rows in every table.
//! - A database that is another program's is refused and left alone.
//! - SIGKILL during an ingest: the file is wholly out, the store sound, and the file
//!   then goes in whole.
//! - Two replicas see one ingest; a replica restarted mid-ingest serves the old store,
//!   then follows the commit; an admin ingest through one replica is served by both.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hotspot::store::{Store, StoreAt};

/// A database of the test server, dropped at the end of the test (with whatever is
/// still connected to it).
struct TestDb {
    base: String,
    name: String,
    url: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A fresh database on the test server, or None (after saying why) when there is none.
fn database(tag: &str) -> Option<TestDb> {
    let Ok(base) = std::env::var("HOTSPOT_TEST_PG") else {
        assert!(
            std::env::var("HOTSPOT_REQUIRE_PG").as_deref() != Ok("1"),
            "HOTSPOT_REQUIRE_PG=1 but HOTSPOT_TEST_PG names no server"
        );
        eprintln!("skipped: HOTSPOT_TEST_PG names no PostgreSQL server (scripts/test starts one)");
        return None;
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "hs_{}_{}_{}",
        tag,
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin = postgres::Client::connect(&base, postgres::NoTls)
        .unwrap_or_else(|e| panic!("HOTSPOT_TEST_PG: {e}"));
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let (head, _) = base.rsplit_once('/').expect("a URL with a database path");
    Some(TestDb {
        url: format!("{head}/{name}"),
        base: base.clone(),
        name,
    })
}

fn pg(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect")
}

/// Every table's rows as text, without what differs by design
/// (timestamps; stop-and-search ids, which PostgreSQL's sequence never reuses).
/// Columns: name, with `:f` for a float (6 decimals), `:b` for a boolean (0/1).
const TABLES: &[(&str, &str)] = &[
    (
        "incidents",
        "id,month,ctype,severity,loc,source,ext_key,crime_id,outcome,day,minute,outcome_month",
    ),
    ("locations", "id,lon_e7,lat_e7,street,lsoa_code"),
    ("batches", "id,key,ingest_id,rows"),
    ("coverage", "dataset,force,month,ingest_id"),
    (
        "casualties",
        "collision_index,vehicle_reference,casualty_reference,incident_id,casualty_class,casualty_severity,casualty_type,road_user,age,age_band,child:b,adjusted_serious:f,adjusted_slight:f",
    ),
    (
        "stop_searches",
        "batch,ingest_id,month,day,minute,lon_e7,lat_e7,type,object,outcome,legislation",
    ),
    (
        "ingest_log",
        "id,file,sha256,format,rows_read,stored,replaced,unlocated,rejected",
    ),
];

fn sqlite_dump(path: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(path).expect("sqlite");
    let mut out = Vec::new();
    for (table, cols) in TABLES {
        let names: Vec<&str> = cols
            .split(',')
            .map(|c| c.split(':').next().unwrap())
            .collect();
        let kinds: Vec<&str> = cols
            .split(',')
            .map(|c| c.split(':').nth(1).unwrap_or(""))
            .collect();
        let mut q = db
            .prepare(&format!("SELECT {} FROM {table}", names.join(",")))
            .expect("query");
        let mut rows = q.query([]).expect("rows");
        while let Some(r) = rows.next().expect("row") {
            let cells: Vec<String> = (0..names.len())
                .map(
                    |i| match r.get::<_, rusqlite::types::Value>(i).expect("value") {
                        rusqlite::types::Value::Null => "NULL".into(),
                        rusqlite::types::Value::Integer(v) => v.to_string(),
                        rusqlite::types::Value::Real(v) if kinds[i] == "f" => format!("{v:.6}"),
                        rusqlite::types::Value::Real(v) => v.to_string(),
                        rusqlite::types::Value::Text(s) => s,
                        rusqlite::types::Value::Blob(b) => format!("{b:?}"),
                    },
                )
                .collect();
            out.push(format!("{table}|{}", cells.join("|")));
        }
    }
    out
}

fn pg_dump(url: &str) -> Vec<String> {
    let mut c = pg(url);
    let mut out = Vec::new();
    for (table, cols) in TABLES {
        let exprs: Vec<String> = cols
            .split(',')
            .map(|c| match c.split_once(':') {
                Some((n, "f")) => format!("round({n}::numeric, 6)::text"),
                Some((n, _)) => format!("({n})::int::text"),
                None => format!("{c}::text"),
            })
            .collect();
        for r in c
            .query(&format!("SELECT {} FROM {table}", exprs.join(",")), &[])
            .expect("query")
        {
            let cells: Vec<String> = (0..exprs.len())
                .map(|i| {
                    r.get::<_, Option<String>>(i)
                        .unwrap_or_else(|| "NULL".into())
                })
                .collect();
            out.push(format!("{table}|{}", cells.join("|")));
        }
    }
    out
}

fn zip_entry(path: &str, entry: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).expect("zip")).expect("zip");
    let mut e = z.by_name(entry).expect("entry");
    let mut b = Vec::new();
    e.read_to_end(&mut b).expect("read");
    b
}

/// The files, in order: each a (name, bytes); the same sequence goes into both stores.
fn sequence() -> Vec<(String, Vec<u8>)> {
    let zip = "fixtures/sample/police-lancashire.zip";
    let mut files = Vec::new();
    for m in ["2022-01", "2022-02", "2022-03"] {
        files.push((
            format!("{m}-lancashire-street.csv"),
            zip_entry(zip, &format!("{m}/{m}-lancashire-street.csv")),
        ));
    }
    // February reissued: 200 rows fewer, and an outcome changed on the rest.
    let feb = String::from_utf8(files[1].1.clone()).expect("utf-8");
    let lines: Vec<&str> = feb.lines().collect();
    let mut reissued: String = lines[..lines.len() - 200]
        .iter()
        .map(|l| {
            format!(
                "{}\n",
                l.replace(
                    "Under investigation",
                    "Investigation complete; no suspect identified"
                )
            )
        })
        .collect();
    reissued.push('\n');
    files.push((
        "2022-02-lancashire-street.csv".into(),
        reissued.into_bytes(),
    ));
    // Outcomes for January's first crimes, then stop and search.
    let jan = String::from_utf8(files[0].1.clone()).expect("utf-8");
    let mut outcomes = String::from(
        "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Outcome type\n",
    );
    for l in jan.lines().skip(1).filter(|l| !l.starts_with(',')).take(50) {
        let f: Vec<&str> = l.split(',').collect();
        outcomes.push_str(&format!(
            "{},2022-03,{},{},{},{},{},{},{},Offender given a caution\n",
            f[0], f[2], f[3], f[4], f[5], f[6], f[7], f[8]
        ));
    }
    outcomes.push_str("no-such-crime,2022-03,Lancashire Constabulary,Lancashire Constabulary,,,No location,,,Offender fined\n");
    files.push((
        "2022-03-lancashire-outcomes.csv".into(),
        outcomes.into_bytes(),
    ));
    files.push((
        "2022-01-lancashire-stop-and-search.csv".into(),
        b"Type,Date,Part of a policing operation,Policing operation,Latitude,Longitude,Gender,Age range,Self-defined ethnicity,Officer-defined ethnicity,Legislation,Object of search,Outcome,Outcome linked to object of search,Removal of more than just outer clothing\n\
Person search,2022-01-09T01:30:00+00:00,False,,53.7590,-2.7020,Male,over 34,,White,Misuse of Drugs Act 1971 (section 23),Controlled drugs,Arrest,True,False\n\
Vehicle search,2022-01-10T12:00:00+00:00,False,,,,,,,,Police and Criminal Evidence Act 1984 (section 1),Article for use in theft,A no further action disposal,False,False\n"
            .to_vec(),
    ));
    // STATS19: every vintage, then 2024 re-released with severities edited (upserts).
    for f in [
        "dft-road-casualty-statistics-accident-2022.csv",
        "dft-road-casualty-statistics-collision-2023.csv",
        "dft-road-casualty-statistics-collision-2024.csv",
    ] {
        files.push((
            f.into(),
            std::fs::read(format!("fixtures/sample/stats19/{f}")).expect("stats19"),
        ));
    }
    let c24 = String::from_utf8(files.last().unwrap().1.clone()).expect("utf-8");
    let header = c24.lines().next().unwrap();
    let sev = header
        .split(',')
        .position(|h| h == "collision_severity")
        .expect("severity column");
    let mut edited = format!("{header}\n");
    for (i, l) in c24.lines().skip(1).enumerate() {
        let mut f: Vec<String> = l.split(',').map(str::to_owned).collect();
        if i % 7 == 0 {
            f[sev] = "1".into();
        }
        edited.push_str(&f.join(","));
        edited.push('\n');
    }
    files.push((
        "dft-road-casualty-statistics-collision-2024-revised.csv".into(),
        edited.into_bytes(),
    ));
    files.push((
        "dft-road-casualty-statistics-casualty-2024.csv".into(),
        std::fs::read("fixtures/stats19-casualties/dft-road-casualty-statistics-casualty-2024.csv")
            .expect("casualties"),
    ));
    // A partner's extract with ids, then its correction; one without ids.
    files.push((
        "partner-v1.csv".into(),
        b"id,date,category,longitude,latitude,location\n\
P-1,2022-02-05,Burglary,-2.701,53.761,Fishergate\n\
P-2,2022-02-06,Drugs,-2.711,53.771,Friargate\n\
P-2,2022-02-07,Robbery,-2.711,53.771,Friargate\n\
P-3,2022-02-08,Robbery,-2.721,53.781,Church Street\n"
            .to_vec(),
    ));
    files.push((
        "partner-v2.csv".into(),
        b"id,date,category,longitude,latitude,location\n\
P-2,2022-02-06,Possession of weapons,-2.712,53.772,Friargate\n\
P-4,2022-02-09,Shoplifting,-2.731,53.791,Market Street\n"
            .to_vec(),
    ));
    files.push((
        "partner-unkeyed.csv".into(),
        b"date,category,longitude,latitude,location\n\
2022-03-01,Burglary,-2.701,53.761,Fishergate\n\
2022-03-02,Burglary,-2.701,53.761,Fishergate\n"
            .to_vec(),
    ));
    // The same bytes again (skipped), and a file that fails as a whole.
    files.push(files[0].clone());
    files.push((
        "broken-street.csv".into(),
        b"Crime ID,Month\nx,2022-01\n".to_vec(),
    ));
    files
}

fn summary_line(r: &Result<hotspot::store::IngestSummary, hotspot::ingest::IngestError>) -> String {
    match r {
        Ok(s) => format!(
            "{} {} unchanged={} read={} stored={} replaced={} unlocated={} rejected={} outcomes={}/{}/{} searches={} casualties={}",
            s.file,
            s.format,
            s.unchanged,
            s.rows_read,
            s.stored,
            s.replaced,
            s.unlocated,
            s.rejected,
            s.outcomes_updated,
            s.outcomes_older,
            s.outcomes_unmatched,
            s.searches,
            s.casualties
        ),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn postgres_keeps_the_sqlite_store_guarantees_row_for_row() {
    let Some(db) = database("same") else {
        return;
    };
    let url = db.url.clone();
    let dir = tempfile::tempdir().expect("temp");
    let mut lite = Store::open(dir.path()).expect("sqlite store");
    let mut post = Store::open_at(&StoreAt::Postgres(url.clone())).expect("postgres store");
    let mut lines = Vec::new();
    for (name, bytes) in sequence() {
        let a = summary_line(&lite.ingest_bytes(&name, &bytes, None));
        let b = summary_line(&post.ingest_bytes(&name, &bytes, None));
        assert_eq!(a, b, "{name}: the two stores answered differently");
        lines.push(b);
    }
    // What the sequence exercises, so that the comparison is not of two empty stores.
    let find = |f: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with(f))
            .cloned()
            .collect::<Vec<_>>()
    };
    let feb = find("2022-02-lancashire-street.csv");
    assert!(
        feb[1].contains("replaced=") && !feb[1].contains("replaced=0 "),
        "{feb:?}"
    );
    assert!(lines.last().unwrap().starts_with("error:"), "{lines:?}");
    assert!(find("2022-01-lancashire-street.csv")[1].contains("unchanged=true"));
    assert!(
        find("2022-03-lancashire-outcomes.csv")[0].contains("outcomes=50/0/1"),
        "{lines:?}"
    );
    assert!(find("dft-road-casualty-statistics-casualty-2024.csv")[0].contains("casualties="));
    let (mut a, mut b) = (
        sqlite_dump(&dir.path().join("hotspot.sqlite")),
        pg_dump(&url),
    );
    // Compared as sorted text: the two databases order text by different collations.
    a.sort_unstable();
    b.sort_unstable();
    assert!(a.len() > 10_000, "{} rows", a.len());
    for t in [
        "incidents",
        "locations",
        "batches",
        "coverage",
        "casualties",
        "stop_searches",
        "ingest_log",
    ] {
        assert!(
            b.iter().any(|r| r.starts_with(&format!("{t}|"))),
            "no {t} rows"
        );
    }
    if a != b {
        // Rows (with their multiplicity) one side has more of than the other.
        let only = |x: &[String], y: &[String]| -> Vec<String> {
            let mut n: std::collections::HashMap<&String, i64> = Default::default();
            for r in x {
                *n.entry(r).or_default() += 1;
            }
            for r in y {
                *n.entry(r).or_default() -= 1;
            }
            let mut v: Vec<String> = n
                .into_iter()
                .filter(|e| e.1 > 0)
                .map(|e| format!("{} x{}", e.0, e.1))
                .collect();
            v.sort_unstable();
            v.truncate(4);
            v
        };
        panic!(
            "tables differ ({} vs {} rows); only in SQLite: {:?}; only in PostgreSQL: {:?}",
            a.len(),
            b.len(),
            only(&a, &b),
            only(&b, &a)
        );
    }
    // The store-level readers and the analysis store agree too.
    assert_eq!(
        lite.incident_count().unwrap(),
        post.incident_count().unwrap()
    );
    assert_eq!(
        lite.monthly_totals().unwrap(),
        post.monthly_totals().unwrap()
    );
    assert_eq!(
        lite.casualty_counts().unwrap(),
        post.casualty_counts().unwrap()
    );
    assert_eq!(
        lite.coverage().unwrap().gaps(),
        post.coverage().unwrap().gaps()
    );
    assert_eq!(lite.version().unwrap(), post.version().unwrap());
    assert_eq!(post.integrity_check().unwrap(), "ok");
    let mut located_a = Vec::new();
    lite.for_each_located(|t, s, m, d, x, y| located_a.push((t, s, m, d, x, y)))
        .unwrap();
    let mut located_b = Vec::new();
    post.for_each_located(|t, s, m, d, x, y| located_b.push((t, s, m, d, x, y)))
        .unwrap();
    located_a.sort_unstable();
    located_b.sort_unstable();
    assert_eq!(located_a, located_b);
    let g = std::sync::Arc::new(hotspot::spatial::Geography::bundled().unwrap());
    let sa = hotspot::analysis::from_store(dir.path(), g.clone()).unwrap();
    let sb = hotspot::analysis::from_store_at(&StoreAt::Postgres(url), g).unwrap();
    assert_eq!(sa.incidents.len(), sb.incidents.len());
    assert_eq!(sa.unlocated_by_type, sb.unlocated_by_type);
    assert_eq!(sa.outside_by_type, sb.outside_by_type);
    assert_eq!(sa.datasets_by_type, sb.datasets_by_type);
    assert_eq!(sa.version, sb.version);
    let cells = |s: &hotspot::analysis::AnalysisStore| {
        let mut v: Vec<(u32, u16, u8, u8)> = (0..s.incidents.len())
            .map(|i| {
                (
                    s.incidents.loc[i],
                    s.incidents.month[i],
                    s.incidents.ctype[i],
                    s.incidents.severity[i],
                )
            })
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(cells(&sa), cells(&sb));
}

#[test]
fn a_database_that_is_not_a_hotspot_store_is_refused_and_left_alone() {
    let Some(db) = database("foreign") else {
        return;
    };
    let url = db.url.clone();
    pg(&url)
        .batch_execute(
            "CREATE TABLE incidents (note text); INSERT INTO incidents VALUES ('theirs')",
        )
        .unwrap();
    let err = Store::open_at(&StoreAt::Postgres(url.clone()))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("not a hotspot store"), "{err}");
    assert!(!err.contains("password"), "{err}");
    let rows: Vec<String> = pg(&url)
        .query("SELECT note FROM incidents", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, ["theirs"]);
    let tables: i64 = pg(&url)
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "nothing was created beside it");
}

/// A partner CSV of `n` unkeyed rows across the county (seconds to ingest).
fn big_csv(path: &Path, n: usize) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "date,category,longitude,latitude,location").unwrap();
    for i in 0..n {
        let lon = -3.0 + (i % 97) as f64 * 0.008;
        let lat = 53.7 + (i % 89) as f64 * 0.004;
        writeln!(
            w,
            "2022-0{}-1{},Burglary,{lon:.5},{lat:.5},Street {}",
            1 + i % 9,
            i % 10,
            i % 5000
        )
        .unwrap();
    }
}

fn hotspot() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hotspot"));
    c.env_remove("HOTSPOT_STORE").env_remove("HOTSPOT_DATA");
    c
}

/// Waits until a writer holds the store's write lock (an ingest is in its transaction).
fn wait_for_writer(url: &str, child: &mut Child) {
    let mut c = pg(url);
    let t = Instant::now();
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
                &[],
            )
            .unwrap()
            .get(0);
        if n > 0 {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the ingest ended before it was seen running"
        );
        assert!(t.elapsed() < Duration::from_secs(120), "no ingest started");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn count(url: &str, sql: &str) -> i64 {
    pg(url).query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn sigkill_during_an_ingest_leaves_the_file_wholly_out() {
    let Some(db) = database("kill") else {
        return;
    };
    let url = db.url.clone();
    let files = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let first = files.path().join("2022-01-lancashire-street.csv");
    std::fs::write(
        &first,
        zip_entry(
            "fixtures/sample/police-lancashire.zip",
            "2022-01/2022-01-lancashire-street.csv",
        ),
    )
    .unwrap();
    let ok = hotspot()
        .args(["ingest", "--store", &url, "--data"])
        .arg(data.path())
        .arg(&first)
        .status()
        .unwrap();
    assert!(ok.success());
    let before = (
        count(&url, "SELECT count(*) FROM incidents"),
        count(&url, "SELECT count(*) FROM ingest_log"),
    );
    let big = files.path().join("partner-big.csv");
    let n = 600_000;
    big_csv(&big, n);
    let mut child = hotspot()
        .args(["ingest", "--store", &url, "--data"])
        .arg(data.path())
        .arg(&big)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_writer(&url, &mut child);
    std::thread::sleep(Duration::from_millis(300));
    let killed_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        killed_running,
        "the ingest finished before the kill: make the file bigger"
    );
    // The server rolls the dead client's transaction back and frees its lock.
    let t = Instant::now();
    while count(
        &url,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
    ) > 0
    {
        assert!(t.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        (
            count(&url, "SELECT count(*) FROM incidents"),
            count(&url, "SELECT count(*) FROM ingest_log")
        ),
        before,
        "nothing of the killed file is stored"
    );
    let store = Store::open_at(&StoreAt::Postgres(url.clone())).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let ok = hotspot()
        .args(["ingest", "--store", &url, "--data"])
        .arg(data.path())
        .arg(&big)
        .status()
        .unwrap();
    assert!(ok.success());
    assert_eq!(
        count(&url, "SELECT count(*) FROM incidents"),
        before.0 + n as i64
    );
    assert_eq!(count(&url, "SELECT count(*) FROM ingest_log"), before.1 + 1);
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ADMIN_KEY: &str = "replica-test-admin-key";

fn serve(url: &str, data: &Path) -> Server {
    let config = data.join("hotspot.toml");
    std::fs::write(
        &config,
        format!(
            "[[keys]]\nname = \"replica-test\"\nrole = \"admin\"\nsha256 = \"{}\"\n",
            hotspot::serve::auth::hash_key(ADMIN_KEY)
        ),
    )
    .unwrap();
    let mut child = hotspot()
        .args(["serve", "--bind", "127.0.0.1:0", "--store", url, "--config"])
        .arg(&config)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "warn")
        .env("HOTSPOT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hotspot serve starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("hotspot is serving at http://") {
                let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("the server printed its address");
    Server { child, addr }
}

/// One request with the admin key (HTTP/1.0: the answer is not chunked).
fn http(s: &Server, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut conn = std::net::TcpStream::connect(&s.addr).expect("connect");
    write!(
        conn,
        "{method} {path} HTTP/1.0\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(body).unwrap();
    let mut out = Vec::new();
    conn.read_to_end(&mut out).unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let status = String::from_utf8_lossy(&out[9..12])
        .parse()
        .expect("status");
    let v = serde_json::from_slice(&out[split + 4..]).unwrap_or(serde_json::Value::Null);
    (status, v)
}

fn health(s: &Server) -> serde_json::Value {
    http(s, "GET", "/health", b"").1
}

fn expected_after(url: &str) -> (u64, usize) {
    let g = std::sync::Arc::new(hotspot::spatial::Geography::bundled().unwrap());
    let s = hotspot::analysis::from_store_at(&StoreAt::Postgres(url.to_owned()), g).unwrap();
    (s.version, s.incidents.len())
}

fn wait_serving(servers: &[&Server], want: (u64, usize)) -> Duration {
    let t = Instant::now();
    loop {
        let all = servers.iter().all(|s| {
            let h = health(s);
            (h["store_version"].as_u64(), h["incidents"].as_u64())
                == (Some(want.0), Some(want.1 as u64))
        });
        if all {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "replicas did not follow: {:?}",
            servers.iter().map(|s| health(s)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_replicas_see_one_ingest_and_a_restarted_replica_follows_the_commit() {
    let Some(db) = database("replicas") else {
        return;
    };
    let url = db.url.clone();
    let files = tempfile::tempdir().unwrap();
    let d = |n: &str| -> PathBuf {
        let p = files.path().join(n);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let jan = files.path().join("2022-01-lancashire-street.csv");
    std::fs::write(
        &jan,
        zip_entry(
            "fixtures/sample/police-lancashire.zip",
            "2022-01/2022-01-lancashire-street.csv",
        ),
    )
    .unwrap();
    assert!(
        hotspot()
            .args(["ingest", "--store", &url, "--data"])
            .arg(d("cli"))
            .arg(&jan)
            .status()
            .unwrap()
            .success()
    );
    let a = serve(&url, &d("a"));
    let b = serve(&url, &d("b"));
    let start = expected_after(&url);
    wait_serving(&[&a, &b], start);
    // One ingest, from a third process: both replicas serve it.
    let feb = files.path().join("2022-02-lancashire-street.csv");
    std::fs::write(
        &feb,
        zip_entry(
            "fixtures/sample/police-lancashire.zip",
            "2022-02/2022-02-lancashire-street.csv",
        ),
    )
    .unwrap();
    assert!(
        hotspot()
            .args(["ingest", "--store", &url, "--data"])
            .arg(d("cli"))
            .arg(&feb)
            .status()
            .unwrap()
            .success()
    );
    // Timed from the ingest's exit (its commit came just before) to both replicas
    // answering with the new version.
    let committed = Instant::now();
    let version = count(&url, "SELECT max(id) FROM ingest_log") as u64;
    while [&a, &b]
        .iter()
        .any(|s| health(s)["store_version"].as_u64() != Some(version))
    {
        assert!(
            committed.elapsed() < Duration::from_secs(120),
            "replicas did not follow"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "commit to both replicas serving: {} ms",
        committed.elapsed().as_millis()
    );
    let after = expected_after(&url);
    assert!(after.1 > start.1 && after.0 == version);
    wait_serving(&[&a, &b], after);
    // A replica restarted while an ingest is in its transaction serves the committed
    // store (never part of the file), then the commit.
    let big = files.path().join("partner-big.csv");
    big_csv(&big, 600_000);
    let mut ingest = hotspot()
        .args(["ingest", "--store", &url, "--data"])
        .arg(d("cli"))
        .arg(&big)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_writer(&url, &mut ingest);
    drop(b);
    let b = serve(&url, &d("b"));
    let h = health(&b);
    let mid = (
        h["store_version"].as_u64().unwrap(),
        h["incidents"].as_u64().unwrap() as usize,
    );
    assert!(ingest.wait().unwrap().success());
    let done = expected_after(&url);
    eprintln!(
        "replica restarted mid-ingest served {}",
        if mid == after {
            "the store before the file"
        } else {
            "the store with the file (the ingest committed first)"
        }
    );
    assert!(
        mid == after || mid == done,
        "the restarted replica served {mid:?}: neither {after:?} nor {done:?}"
    );
    assert!(done.1 > after.1);
    wait_serving(&[&a, &b], done);
    // An admin ingest through one replica: the other serves it too.
    let mar = zip_entry(
        "fixtures/sample/police-lancashire.zip",
        "2022-03/2022-03-lancashire-street.csv",
    );
    let (status, job) = http(
        &b,
        "POST",
        "/admin/ingest?name=2022-03-lancashire-street.csv",
        &mar,
    );
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("job id").to_owned();
    let t = Instant::now();
    loop {
        let (_, j) = http(&b, "GET", &format!("/admin/ingest/{id}"), b"");
        if j["state"] == "done" {
            assert_eq!(j["status"], 200, "{j}");
            break;
        }
        assert!(
            j["state"] != "failed" && t.elapsed() < Duration::from_secs(120),
            "{j}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let last = expected_after(&url);
    assert!(last.1 > done.1);
    wait_serving(&[&a, &b], last);
    let matched = |s: &Server| {
        http(s, "GET", "/collections/incidents/items?limit=1", b"").1["numberMatched"].as_u64()
    };
    assert_eq!(matched(&a), matched(&b));
    assert!(matched(&a).is_some());
}

/// The connection string GDAL's and QGIS's PostgreSQL drivers take, from a test URL.
fn conninfo(url: &str) -> String {
    let c: postgres::Config = url.parse().expect("a URL");
    let host = match &c.get_hosts()[0] {
        postgres::config::Host::Tcp(h) => h.clone(),
        postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    format!(
        "host={host} port={} user={} dbname={}",
        c.get_ports().first().copied().unwrap_or(5432),
        c.get_user().unwrap_or("postgres"),
        c.get_dbname().unwrap_or("postgres")
    )
}

/// With PostGIS on the server, GDAL (ogrinfo, ogr2ogr) and QGIS open the store's
/// `locations` and `incident_points` as point layers in WGS84: every located incident,
/// each at its stored coordinate.
#[test]
fn gis_clients_open_the_postgis_store_as_point_layers() {
    let Some(db) = database("gis") else {
        return;
    };
    let url = db.url.clone();
    let postgis: bool = pg(&url)
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM pg_available_extensions WHERE name = 'postgis')",
            &[],
        )
        .unwrap()
        .get(0);
    if !postgis {
        assert!(
            std::env::var("HOTSPOT_REQUIRE_PG").as_deref() != Ok("1"),
            "the test server has no PostGIS (Debian: postgresql-NN-postgis-3)"
        );
        eprintln!("skipped: no PostGIS on the test server");
        return;
    }
    let mut store = Store::open_at(&StoreAt::Postgres(url.clone())).unwrap();
    for m in ["2022-01", "2022-02"] {
        let bytes = zip_entry(
            "fixtures/sample/police-lancashire.zip",
            &format!("{m}/{m}-lancashire-street.csv"),
        );
        store
            .ingest_bytes(&format!("{m}-lancashire-street.csv"), &bytes, None)
            .unwrap();
    }
    let located = count(&url, "SELECT count(*) FROM incidents WHERE loc IS NOT NULL");
    assert!(located > 2000);
    let pgconn = format!("PG:{}", conninfo(&url));
    if std::env::var("HOTSPOT_SKIP_GDAL").as_deref() != Ok("1") {
        let info = Command::new("ogrinfo")
            .args(["-ro", "-so", &pgconn, "incident_points"])
            .output()
            .expect("ogrinfo (gdal-bin) runs");
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&info.stderr)
        );
        assert!(text.contains("Geometry: Point"), "{text}");
        assert!(
            text.contains(&format!("Feature Count: {located}")),
            "{text}"
        );
        assert!(text.contains("WGS 84"), "{text}");
        // Every location's point is its stored coordinate.
        let out = tempfile::tempdir()
            .unwrap()
            .keep()
            .join("locations.geojson");
        let st = Command::new("ogr2ogr")
            .args(["-f", "GeoJSON", "-lco", "COORDINATE_PRECISION=7"])
            .arg(&out)
            .args([&pgconn, "locations"])
            .status()
            .unwrap();
        assert!(st.success());
        let fc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        let features = fc["features"].as_array().unwrap();
        assert_eq!(
            features.len() as i64,
            count(&url, "SELECT count(*) FROM locations")
        );
        for f in features {
            let p = &f["properties"];
            let c = &f["geometry"]["coordinates"];
            let got = (
                (c[0].as_f64().unwrap() * 1e7).round() as i64,
                (c[1].as_f64().unwrap() * 1e7).round() as i64,
            );
            assert_eq!(
                got,
                (p["lon_e7"].as_i64().unwrap(), p["lat_e7"].as_i64().unwrap()),
                "{f}"
            );
        }
    }
    if std::env::var("HOTSPOT_SKIP_QGIS").as_deref() != Ok("1") {
        let python =
            std::env::var("HOTSPOT_QGIS_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let script = format!(
            "from qgis.core import QgsApplication, QgsVectorLayer\n\
             app = QgsApplication([], False); app.initQgis()\n\
             uri = \"{} key='id' srid=4326 type=Point table=\\\"public\\\".\\\"incident_points\\\" (geom)\"\n\
             layer = QgsVectorLayer(uri, 'incidents', 'postgres')\n\
             print(layer.isValid(), layer.featureCount(), layer.crs().authid(), layer.geometryType())\n",
            conninfo(&url)
        );
        let out = Command::new(&python)
            .args(["-c", &script])
            .env("QT_QPA_PLATFORM", "offscreen")
            .output()
            .expect("python3 with PyQGIS runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(
            words.first(),
            Some(&"True"),
            "QGIS could not open the layer: {text}"
        );
        assert_eq!(words.get(1), Some(&located.to_string().as_str()), "{text}");
        assert_eq!(words.get(2), Some(&"EPSG:4326"), "{text}");
    }
}
