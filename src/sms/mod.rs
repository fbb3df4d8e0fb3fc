//! Text messages: the `SmsSender` trait and its two implementations, a file sender for
//! development (each message a file in `sms.dir`) and a generic HTTP sender that fits the usual
//! SMS gateways (URL, method, `Authorization` header and a body template, all configured).
//!
//! Messages carry one-time codes: they are never logged.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{Secret, SmsSettings, SmsTransport};

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("file: {0}")]
    File(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("gateway answered {0}")]
    Status(u16),
}

#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    /// Send `text` to `to` (an E.164 number).
    async fn send(&self, to: &str, text: &str) -> Result<(), SmsError>;
}

/// Development sender: writes `<dir>/<uuid>.txt` holding `To: <number>`, a blank line, the text.
pub struct FileSender {
    dir: PathBuf,
}

#[async_trait]
impl SmsSender for FileSender {
    async fn send(&self, to: &str, text: &str) -> Result<(), SmsError> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let id = uuid::Uuid::now_v7();
        let tmp = self.dir.join(format!(".{id}.tmp"));
        tokio::fs::write(&tmp, format!("To: {to}\n\n{text}\n")).await?;
        tokio::fs::rename(&tmp, self.dir.join(format!("{id}.txt"))).await?;
        Ok(())
    }
}

/// A generic HTTP gateway client.
pub struct HttpSender {
    client: reqwest::Client,
    url: String,
    method: reqwest::Method,
    authorization: Secret,
    content_type: String,
    body_template: String,
}

impl HttpSender {
    /// The body for one message: `{to}` and `{message}` replaced, encoded for the content type.
    fn body(&self, to: &str, text: &str) -> String {
        let encode = |v: &str| -> String {
            if self.content_type.contains("json") {
                let quoted = serde_json::Value::from(v).to_string();
                quoted[1..quoted.len() - 1].to_owned()
            } else if self.content_type.contains("x-www-form-urlencoded") {
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
            } else {
                v.to_owned()
            }
        };
        self.body_template
            .replace("{to}", &encode(to))
            .replace("{message}", &encode(text))
    }
}

#[async_trait]
impl SmsSender for HttpSender {
    async fn send(&self, to: &str, text: &str) -> Result<(), SmsError> {
        let mut req = self.client.request(self.method.clone(), &self.url);
        if self.method == reqwest::Method::GET {
            req = req.query(&[("to", to), ("message", text)]);
        } else {
            req = req
                .header(reqwest::header::CONTENT_TYPE, &self.content_type)
                .body(self.body(to, text));
        }
        if !self.authorization.expose().is_empty() {
            req = req.header(reqwest::header::AUTHORIZATION, self.authorization.expose());
        }
        // The URL may carry a gateway key: keep it out of errors (and so out of logs).
        let resp = req.send().await.map_err(reqwest::Error::without_url)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(SmsError::Status(resp.status().as_u16()))
        }
    }
}

/// The sender the settings ask for.
pub fn from_settings(s: &SmsSettings) -> Result<Arc<dyn SmsSender>, SmsError> {
    Ok(match s.transport {
        SmsTransport::File => Arc::new(FileSender { dir: s.dir.clone() }),
        SmsTransport::Http => Arc::new(HttpSender {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            url: s.http_url.clone(),
            method: s.http_method.parse().unwrap_or(reqwest::Method::POST),
            authorization: s.http_authorization.clone(),
            content_type: s.http_content_type.clone(),
            body_template: s.http_body_template.clone(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(content_type: &str, template: &str) -> HttpSender {
        HttpSender {
            client: reqwest::Client::new(),
            url: "http://127.0.0.1:9/".into(),
            method: reqwest::Method::POST,
            authorization: Secret::new(""),
            content_type: content_type.into(),
            body_template: template.into(),
        }
    }

    #[test]
    fn body_template_encodes_for_its_content_type() {
        let json = sender("application/json", r#"{"to":"{to}","text":"{message}"}"#);
        let body = json.body("+66812345678", "Code \"123456\"\nbye");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["text"], "Code \"123456\"\nbye");
        let form = sender(
            "application/x-www-form-urlencoded",
            "To={to}&Body={message}",
        );
        assert_eq!(
            form.body("+66812345678", "a b&c"),
            "To=%2B66812345678&Body=a+b%26c"
        );
    }
}
