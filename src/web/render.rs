//! Tera templates compiled into the binary, and rendering helpers. Template names end in `.html`
//! so Tera escapes every variable.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tera::{Context, Tera};

pub struct Templates {
    tera: Tera,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    (
        "form_post.html",
        include_str!("../../templates/form_post.html"),
    ),
    (
        "logout_confirm.html",
        include_str!("../../templates/logout_confirm.html"),
    ),
    (
        "signed_out.html",
        include_str!("../../templates/signed_out.html"),
    ),
    ("signup.html", include_str!("../../templates/signup.html")),
    (
        "verify_email.html",
        include_str!("../../templates/verify_email.html"),
    ),
    (
        "verify_link.html",
        include_str!("../../templates/verify_link.html"),
    ),
    (
        "forgot_password.html",
        include_str!("../../templates/forgot_password.html"),
    ),
    (
        "reset_password.html",
        include_str!("../../templates/reset_password.html"),
    ),
    ("notice.html", include_str!("../../templates/notice.html")),
    ("account.html", include_str!("../../templates/account.html")),
    (
        "mfa_login.html",
        include_str!("../../templates/mfa_login.html"),
    ),
    (
        "mfa_setup.html",
        include_str!("../../templates/mfa_setup.html"),
    ),
    (
        "mfa_codes.html",
        include_str!("../../templates/mfa_codes.html"),
    ),
    (
        "mfa_manage.html",
        include_str!("../../templates/mfa_manage.html"),
    ),
    (
        "login_code.html",
        include_str!("../../templates/login_code.html"),
    ),
    (
        "admin/layout.html",
        include_str!("../../templates/admin/layout.html"),
    ),
    (
        "admin/dashboard.html",
        include_str!("../../templates/admin/dashboard.html"),
    ),
    (
        "admin/users.html",
        include_str!("../../templates/admin/users.html"),
    ),
    (
        "admin/user.html",
        include_str!("../../templates/admin/user.html"),
    ),
    (
        "admin/clients.html",
        include_str!("../../templates/admin/clients.html"),
    ),
    (
        "admin/client.html",
        include_str!("../../templates/admin/client.html"),
    ),
    (
        "admin/groups.html",
        include_str!("../../templates/admin/groups.html"),
    ),
    (
        "admin/mail.html",
        include_str!("../../templates/admin/mail.html"),
    ),
    (
        "admin/group.html",
        include_str!("../../templates/admin/group.html"),
    ),
    (
        "admin/audit.html",
        include_str!("../../templates/admin/audit.html"),
    ),
];

impl Templates {
    pub fn load() -> Result<Self, tera::Error> {
        let mut tera = Tera::new();
        tera.add_raw_templates(TEMPLATES.iter().copied())?;
        Ok(Self { tera })
    }

    /// Render a page; pages are never cached and never framed.
    pub fn page(&self, status: StatusCode, name: &str, ctx: &Context) -> Response {
        match self.tera.render(name, ctx) {
            Ok(html) => (
                status,
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                html,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "template failed to render");
                plain_error(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// A page with a title, a message and an optional link onwards.
    pub fn notice_page(
        &self,
        status: StatusCode,
        title: &str,
        message: &str,
        link: Option<(&str, &str)>,
    ) -> Response {
        let mut ctx = Context::new();
        ctx.insert("title", title);
        ctx.insert("message", message);
        ctx.insert("link", &link.map(|l| l.0));
        ctx.insert("link_text", &link.map(|l| l.1));
        self.page(status, "notice.html", &ctx)
    }

    /// The error page: a title and a message for a person, never internals.
    pub fn error_page(&self, status: StatusCode, title: &str, message: &str) -> Response {
        let mut ctx = Context::new();
        ctx.insert("title", title);
        ctx.insert("message", message);
        self.page(status, "error.html", &ctx)
    }
}

/// A minimal answer when even rendering failed: the status, and nothing internal.
pub fn plain_error(status: StatusCode) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Something went wrong on our side. Please try again later.",
    )
        .into_response()
}
