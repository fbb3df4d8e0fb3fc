//! The account page's data changes: profile (OIDC standard claims), e-mail change (the new
//! address is confirmed by a link before it takes effect, and the old one gets a notice, in the
//! same transaction), and phone number (set unverified, confirmed by an SMS code).

use super::signin::confirm_password;
use super::{
    AccountError, AccountResult, Accounts, Bucket, Caller, Refusal, is_language_tag,
    signup::take_link,
};
use crate::audit::{Event, action};
use crate::domain::{Email, Phone, User};
use crate::email::Recipient;
use crate::store::{CodePurpose, ProfileUpdate, StoreError};

const MAX_FIELD_CHARS: usize = 200;
pub const WRONG_PASSWORD: &str = "The current password is incorrect.";

const BAD_EMAIL_LINK: Refusal = Refusal {
    status: 400,
    title: "Link not valid",
    message: "This link is wrong, expired or already used, or the address is no longer available. Start the change again from your account page.",
    link: Some(("/account", "Your account")),
};

/// The profile form, as typed.
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub name: String,
    pub given_name: String,
    pub family_name: String,
    pub picture: String,
    pub locale: String,
}

fn optional(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// Check the profile form: `Invalid` with field `profile` and the first problem.
pub fn parse_profile(input: &ProfileInput) -> AccountResult<ProfileUpdate> {
    let fail = |msg: String| AccountError::field("profile", msg);
    for (label, v) in [
        ("Name", &input.name),
        ("Given name", &input.given_name),
        ("Family name", &input.family_name),
    ] {
        if v.trim().chars().count() > MAX_FIELD_CHARS {
            return Err(fail(format!(
                "{label}: use at most {MAX_FIELD_CHARS} characters."
            )));
        }
    }
    let picture = optional(&input.picture);
    if let Some(p) = &picture {
        let ok = url::Url::parse(p)
            .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && p.len() <= 2000);
        if !ok {
            return Err(fail(
                "Picture URL: use an https:// address of an image.".into(),
            ));
        }
    }
    let locale = optional(&input.locale);
    if let Some(l) = &locale
        && !is_language_tag(l)
    {
        return Err(fail("Language: use a tag such as en, th or ko-KR.".into()));
    }
    Ok(ProfileUpdate {
        name: optional(&input.name),
        given_name: optional(&input.given_name),
        family_name: optional(&input.family_name),
        picture,
        locale,
    })
}

pub async fn update_profile(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    input: &ProfileInput,
    now: i64,
) -> AccountResult<()> {
    let update = parse_profile(input)?;
    acc.store().update_profile(&user.id, &update, now).await?;
    acc.audit(
        Event::new(action::PROFILE_UPDATE)
            .actor(&user.id)
            .target(&user.id)
            .origin(&caller.origin()),
    )
    .await;
    Ok(())
}

/// Ask to change the address to `new_email` (current password required): a confirmation link
/// goes to the new address. Whether it is taken is not revealed here: the link fails later.
/// `Invalid` with field `email`.
pub async fn request_email_change(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    new_email: &str,
    password: &str,
    now: i64,
) -> AccountResult<()> {
    let new_email = Email::parse_new(new_email).map_err(|e| AccountError::field("email", e.0))?;
    if !confirm_password(acc, caller, user, password).await? {
        return Err(AccountError::field("email", WRONG_PASSWORD));
    }
    if Email::parse(&user.email).is_ok_and(|current| current == new_email) {
        return Err(AccountError::field(
            "email",
            "That is already your address.",
        ));
    }
    let out = acc
        .composer()
        .email_change(&Recipient::at(user, new_email.as_str()), now)?;
    acc.send(&user.id, out, now).await?;
    acc.audit(
        Event::new(action::EMAIL_CHANGE)
            .actor(&user.id)
            .target(&user.id)
            .origin(&caller.origin())
            .detail("step", "requested"),
    )
    .await;
    Ok(())
}

/// Make the address of the change link `token` the account's. `Refused` for a dead link or an
/// address taken meanwhile.
pub async fn confirm_email_change(
    acc: &Accounts,
    caller: &Caller,
    token: &str,
    now: i64,
) -> AccountResult<()> {
    let origin = caller.origin();
    let Some(link) = take_link(acc, caller, token, CodePurpose::EmailChange, now).await? else {
        return Err(AccountError::Refused(BAD_EMAIL_LINK));
    };
    let store = acc.store();
    let user = store
        .find_user(&link.user_id)
        .await?
        .filter(User::is_active)
        .ok_or(AccountError::Refused(BAD_EMAIL_LINK))?;
    // The address the link was sent to, as typed in the request (checked then).
    let new_email =
        Email::parse(&link.target).map_err(|_| AccountError::Refused(BAD_EMAIL_LINK))?;
    // The old address is told, in the same transaction as the change.
    let notice = acc
        .composer()
        .email_changed(&Recipient::of(&user), &link.target)?;
    match store
        .change_email(&user.id, &new_email, &[notice], now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            acc.audit(
                Event::new(action::EMAIL_CHANGE)
                    .target(&user.id)
                    .origin(&origin)
                    .failure("email_taken"),
            )
            .await;
            return Err(AccountError::Refused(BAD_EMAIL_LINK));
        }
        Err(e) => return Err(e.into()),
    }
    acc.mailer.wake();
    acc.audit(
        Event::new(action::EMAIL_CHANGE)
            .actor(&user.id)
            .target(&user.id)
            .origin(&origin)
            .detail("step", "confirmed"),
    )
    .await;
    Ok(())
}

/// What asking to confirm a phone number did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneOutcome {
    /// A code was texted (or one was moments ago: the cool-down holds the new one back).
    CodeSent,
    /// It is the account's number and already confirmed.
    AlreadyVerified,
}

/// Set the number (unverified) and text it a 6-digit code; asking again for the same number
/// re-sends, subject to the cool-down. `Invalid` with field `phone`.
pub async fn set_phone(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    phone: &str,
    now: i64,
) -> AccountResult<PhoneOutcome> {
    let phone = Phone::parse(phone).map_err(|e| AccountError::field("phone", e.0))?;
    acc.limit(Bucket::CodeRequest, caller, Some(phone.as_str()))
        .await?;
    let store = acc.store();
    let same = user.phone_number.as_deref() == Some(phone.as_str());
    if same && user.phone_number_verified {
        return Ok(PhoneOutcome::AlreadyVerified);
    }
    if !same {
        store.set_phone(&user.id, Some(phone.as_str()), now).await?;
    } else if acc.in_cooldown(user, CodePurpose::PhoneVerify, now).await? {
        return Ok(PhoneOutcome::CodeSent);
    }
    // The SMS is queued with the code (one transaction) and sent by the outbox worker: a down
    // gateway delays it, never loses it.
    let out = acc
        .composer()
        .phone_code(&Recipient::at(user, phone.as_str()), now)?;
    acc.send(&user.id, out, now).await?;
    acc.audit(
        Event::new(action::CODE_REQUEST)
            .actor(&user.id)
            .target(&user.id)
            .origin(&caller.origin())
            .detail("purpose", "phone_verify"),
    )
    .await;
    Ok(PhoneOutcome::CodeSent)
}

/// Confirm the account's number with the SMS `code`. `Ok(false)` when there is no number to
/// confirm (or it changed meanwhile); `Invalid` with field `phone` for a wrong code.
pub async fn verify_phone(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    code: &str,
    now: i64,
) -> AccountResult<bool> {
    let Some(phone) = user.phone_number.clone() else {
        return Ok(false);
    };
    acc.limit(Bucket::Verify, caller, Some(&phone)).await?;
    let origin = caller.origin();
    let store = acc.store();
    let check = acc
        .check_code(&user.id, CodePurpose::PhoneVerify, code, now)
        .await?;
    let accepted = match check {
        Ok(c) if c.target == phone => c,
        _ => {
            acc.audit(
                Event::new(action::PHONE_VERIFY)
                    .actor(&user.id)
                    .target(&user.id)
                    .origin(&origin)
                    .failure("wrong_code"),
            )
            .await;
            return Err(AccountError::field(
                "phone",
                "That code is wrong or has expired. Ask for a new one.",
            ));
        }
    };
    match store
        .mark_phone_verified(&user.id, &accepted.target, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Ok(false),
        Err(StoreError::Conflict) => {
            return Err(AccountError::field(
                "phone",
                "This number cannot be confirmed for your account.",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    acc.audit(
        Event::new(action::PHONE_VERIFY)
            .actor(&user.id)
            .target(&user.id)
            .origin(&origin),
    )
    .await;
    Ok(true)
}
