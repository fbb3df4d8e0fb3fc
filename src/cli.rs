//! The command line: `serve`, `migrate`, and the bootstrap commands for users and clients.
//! Every command reads the same layered configuration as `serve`. Bad input ends with one line on
//! stderr and a non-zero exit (2 for invalid configuration or arguments, 1 when the operation
//! fails), having written nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::admin::{Actor, AdminCtx, AdminError, users};
use crate::config::{LogFormat, Settings};
use crate::crypto::PasswordHasher;
use crate::domain::{Email, InvalidInput, NewUser, Password};
use crate::oauth::client_auth::ClientCache;
use crate::startup::{Application, open_store};
use crate::store::StoreError;

mod clients;
mod keys;
mod mail;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "An OAuth 2.0 / OpenID Connect provider"
)]
struct Cli {
    /// A TOML file layered over the defaults (environment variables still win).
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only obscure the clap derive"
)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage relying-party clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage signing keys: rotate, prune, list.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Given-up mail and text messages: list, re-queue.
    #[command(subcommand)]
    Mail(mail::MailCommand),
    /// Measure argon2id with the configured `[argon2]` parameters on this machine: the time of
    /// one hash and hashes per second on all cores (to tune the parameters; benches/load.sh
    /// reports sign-in cost beside it).
    HashBench {
        /// How long to measure.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user with a password.
    Create(UserCreate),
    /// Give an existing user the `admin` role (management pages and admin API).
    GrantAdmin {
        /// The user's e-mail address.
        email: String,
    },
    /// Take the `admin` role away (refused for the last active administrator).
    RevokeAdmin {
        /// The user's e-mail address.
        email: String,
    },
}

#[derive(Args)]
struct UserCreate {
    #[arg(long)]
    email: String,
    /// The password (prefer --password-file: arguments are visible to other local users).
    #[arg(
        long,
        conflicts_with = "password_file",
        required_unless_present = "password_file"
    )]
    password: Option<String>,
    /// Read the password from this file (trailing newline removed).
    #[arg(long)]
    password_file: Option<PathBuf>,
    #[arg(long)]
    name: Option<String>,
    /// Mark the e-mail address as verified.
    #[arg(long)]
    verified: bool,
    /// Give the user the `admin` role.
    #[arg(long)]
    admin: bool,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id and (confidential clients) its secret, once.
    Create(clients::ClientCreate),
    /// Change a client's settings; flags not given keep their stored value.
    Update(clients::ClientUpdate),
    /// Issue a new secret for a confidential client (the old one stops working at once); prints
    /// it, once.
    RotateSecret(clients::ClientRotateSecret),
    /// List registered clients.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// A command's failure: the one line to print and the exit code.
struct Failure {
    message: String,
    code: u8,
}

impl From<InvalidInput> for Failure {
    fn from(e: InvalidInput) -> Self {
        Self {
            message: e.0,
            code: 2,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self {
            message: format!("{e:#}"),
            code: 1,
        }
    }
}

/// A refusal by the admin service: its message, exit 2 for bad input or an unknown record, 1
/// otherwise.
impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Self {
        let code = match e {
            AdminError::Invalid { .. } | AdminError::NotFound(_) => 2,
            _ => 1,
        };
        let message = match e {
            // The CLI's operator may look at the database: say what failed.
            AdminError::Store(e) => e.to_string(),
            e => e.to_string(),
        };
        Self { message, code }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self {
            message: e.to_string(),
            code: 1,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version, and the usage shown when no command is given.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            // One line, like every other refusal: clap's first line names the flag and the fix.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("portcullis: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let loaded = match Settings::load(cli.config.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = loaded.settings;
    let serving = matches!(cli.command, Command::Serve);
    let level = if serving {
        settings.log_level.clone()
    } else {
        "warn".to_owned()
    };
    let format = if serving {
        settings.log_format
    } else {
        LogFormat::Text
    };
    crate::telemetry::init(format, &level);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portcullis: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("portcullis: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run(command: Command, settings: Settings) -> Result<(), Failure> {
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run().await.map_err(|e| Failure {
                message: format!("server error: {e}"),
                code: 1,
            })
        }
        Command::Migrate => {
            open_store(&settings).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User(UserCommand::Create(args)) => create_user(settings, args).await,
        Command::User(UserCommand::GrantAdmin { email }) => set_admin(settings, &email, true).await,
        Command::User(UserCommand::RevokeAdmin { email }) => {
            set_admin(settings, &email, false).await
        }
        Command::Client(ClientCommand::Create(args)) => clients::create(settings, args).await,
        Command::Client(ClientCommand::Update(args)) => clients::update(settings, args).await,
        Command::Client(ClientCommand::RotateSecret(args)) => {
            clients::rotate_secret(settings, args).await
        }
        Command::Keys(command) => keys::run(settings, command).await,
        Command::Mail(command) => mail::run(settings, command).await,
        Command::HashBench { seconds, json } => hash_bench(&settings, seconds, json),
        Command::Client(ClientCommand::List { json }) => list_clients(settings, json).await,
    }
}

/// Run `op` with the admin service over a freshly opened store, then close the store.
async fn with_admin<T>(
    settings: &Settings,
    op: impl AsyncFnOnce(AdminCtx<'_>) -> T,
) -> Result<T, Failure> {
    let store = open_store(settings).await?;
    // A process-local cache: a running server sees client changes within `CLIENT_CACHE_TTL`.
    let cache = ClientCache::default();
    let ctx = AdminCtx {
        store: store.as_ref(),
        settings,
        clients: &cache,
    };
    let out = op(ctx).await;
    store.close().await;
    Ok(out)
}

/// `user grant-admin|revoke-admin`: `admin::users::{grant_role, revoke_role}`, with the audit
/// entries they write (actor `cli`).
async fn set_admin(settings: Settings, email: &str, grant: bool) -> Result<(), Failure> {
    let email = Email::parse(email)?;
    let result = with_admin(&settings, async |ctx| {
        let id = users::id_by_email(ctx, email.as_str()).await?;
        let role = crate::admin::ADMIN_ROLE;
        let had = users::get(ctx, &id).await?.roles.iter().any(|r| r == role);
        let actor = Actor::cli();
        let user = if grant {
            users::grant_role(ctx, &actor, &id, role).await?
        } else {
            users::revoke_role(ctx, &actor, &id, role).await?
        };
        Ok::<_, AdminError>((user, had))
    })
    .await?;
    let (user, had) = result.map_err(|e| match e {
        AdminError::NotFound(_) => Failure {
            message: format!("no user with e-mail {email}"),
            code: 1,
        },
        AdminError::LastAdmin => Failure {
            message:
                "refused: this is the last active administrator; grant another user admin first"
                    .to_owned(),
            code: 1,
        },
        e => e.into(),
    })?;
    let verb = match (grant, had) {
        (true, false) => "is now an administrator",
        (true, true) => "was already an administrator",
        (false, true) => "is no longer an administrator",
        (false, false) => "was not an administrator",
    };
    println!("{} <{}> {verb}", user.user.id, user.user.email);
    Ok(())
}

async fn create_user(settings: Settings, args: UserCreate) -> Result<(), Failure> {
    // Validate everything before touching the database.
    let email = Email::parse_new(&args.email)?;
    let raw = match (&args.password, &args.password_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| InvalidInput::new(format!("cannot read {}: {e}", f.display())))?
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
        (None, None) => return Err(InvalidInput::new("a password is required").into()),
    };
    // The sign-up policy: length, not a common password, not the e-mail address.
    let password = Password::parse_new(&raw, &email)
        .map_err(|e| InvalidInput::new(format!("password: {e}")))?;
    let name = args
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    let hasher = PasswordHasher::new(&settings.argon2).map_err(|e| Failure {
        message: e.to_string(),
        code: 2,
    })?;
    let hash = hasher.hash(&password).await.map_err(|e| Failure {
        message: e.to_string(),
        code: 1,
    })?;
    let store = open_store(&settings).await?;
    let new = NewUser {
        email,
        email_verified: args.verified,
        password_hash: Some(hash),
        name,
        roles: if args.admin {
            vec!["admin".to_owned()]
        } else {
            vec![]
        },
        phone_number: None,
        locale: None,
    };
    let result = store.create_user(&new, crate::now()).await;
    store.close().await;
    match result {
        Ok(user) => {
            println!("created user {} <{}>", user.id, user.email);
            Ok(())
        }
        Err(StoreError::Conflict) => Err(Failure {
            message: format!("a user with e-mail {} already exists", new.email),
            code: 1,
        }),
        Err(e) => Err(e.into()),
    }
}

async fn list_clients(settings: Settings, json: bool) -> Result<(), Failure> {
    let store = open_store(&settings).await?;
    let clients = store.list_clients().await;
    store.close().await;
    let clients = clients?;
    if json {
        let list: Vec<_> = clients.iter().map(clients::list_entry).collect();
        println!("{}", serde_json::Value::from(list));
    } else if clients.is_empty() {
        println!("no clients");
    } else {
        for c in &clients {
            println!(
                "{}  {}  {}  {}",
                c.id,
                c.name,
                c.token_endpoint_auth_method.as_str(),
                c.redirect_uris.join(" ")
            );
        }
    }
    Ok(())
}

fn hash_bench(settings: &Settings, seconds: u64, json: bool) -> Result<(), Failure> {
    let a = &settings.argon2;
    let duration = std::time::Duration::from_secs(seconds.clamp(1, 600));
    let fail = |e: crate::crypto::password::HashError| Failure {
        message: format!("cannot hash: {e}"),
        code: 1,
    };
    let one = crate::crypto::password::measure(a, 1, duration).map_err(fail)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let all = crate::crypto::password::measure(a, cores, duration).map_err(fail)?;
    let per_core = one.hashes as f64 / one.seconds;
    let per_second = all.hashes as f64 / all.seconds;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "memory_kib": a.memory_kib, "iterations": a.iterations,
                "parallelism": a.parallelism, "cores": cores,
                "ms_per_hash": 1000.0 / per_core, "hashes_per_second_one_core": per_core,
                "hashes_per_second_all_cores": per_second,
            })
        );
    } else {
        println!(
            "argon2id m={} KiB, t={}, p={}: {:.1} ms a hash; {:.1} hashes/s on one core, {:.1} on all {} cores",
            a.memory_kib,
            a.iterations,
            a.parallelism,
            1000.0 / per_core,
            per_core,
            per_second,
            cores
        );
    }
    Ok(())
}
