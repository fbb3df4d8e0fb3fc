//! `portcullis mail list --given-up | requeue ID`: messages given up after the retry budget, and
//! re-queueing one (`crate::admin::outbox`, the same rules as the admin API and pages; audited
//! with actor `cli`). A running server's worker picks a re-queued message up at its next poll
//! (`mail.poll_interval`).

use clap::Subcommand;

use super::{Failure, with_admin};
use crate::admin::{Actor, AdminError, outbox};
use crate::clock::Clock;
use crate::config::Settings;
use crate::email::Mailer;

#[derive(Subcommand)]
pub enum MailCommand {
    /// List messages; with --given-up (required): those given up and never sent, newest first.
    List {
        /// Only messages given up (the one listing there is; it must be given).
        #[arg(long)]
        given_up: bool,
        /// At most this many (1-200).
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Put a given-up message back in the queue: as it is while its body and code are live,
    /// else a fresh verification, password-reset or invitation message to the same address.
    Requeue {
        /// The message id (from `mail list --given-up`).
        id: String,
    },
}

pub async fn run(settings: Settings, command: MailCommand) -> Result<(), Failure> {
    match command {
        MailCommand::List {
            given_up,
            limit,
            json,
        } => {
            if !given_up {
                return Err(Failure {
                    message: "say which messages to list: --given-up".to_owned(),
                    code: 2,
                });
            }
            let limit = crate::admin::page_limit(Some(limit));
            let items = with_admin(&settings, async |ctx| {
                outbox::given_up(ctx, None, limit).await
            })
            .await??;
            if json {
                println!("{}", serde_json::to_value(&items).unwrap_or_default());
            } else if items.is_empty() {
                println!("no given-up messages");
            } else {
                for m in &items {
                    println!(
                        "{}  {}  {}  {}  {}  {}",
                        m.id,
                        m.channel,
                        m.recipient,
                        m.purpose.as_deref().unwrap_or("-"),
                        m.last_error.as_deref().unwrap_or("-"),
                        if m.has_body { "body" } else { "blanked" }
                    );
                }
            }
            Ok(())
        }
        MailCommand::Requeue { id } => {
            let sms = crate::sms::from_settings(&settings.sms).map_err(|e| Failure {
                message: format!("sms: {e}"),
                code: 2,
            })?;
            let mailer =
                Mailer::new(&settings.mail, sms, Clock::default()).map_err(|e| Failure {
                    message: format!("mail: {e}"),
                    code: 2,
                })?;
            let done = with_admin(&settings, async |ctx| {
                outbox::requeue(ctx, &mailer, &Actor::cli(), &id, crate::now()).await
            })
            .await?
            .map_err(|e| match e {
                AdminError::NotFound(_) => Failure {
                    message: format!("no message with id {id}"),
                    code: 2,
                },
                e => e.into(),
            })?;
            match done.mode {
                outbox::RequeueMode::Requeued => println!("{id} queued again"),
                outbox::RequeueMode::Reissued => {
                    println!("{id} re-issued as {}", done.mail_id);
                }
            }
            Ok(())
        }
    }
}
