//! Mails the services queue: credentials after a purchase or on request, with a password set-up
//! link for account-based products; tenant templates; the list support looks at.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::{found, record, Ctx, Page, Paging, ServiceError, ServiceResult};
use crate::domain::keys::hash_secret;
use crate::domain::sender::{self, SenderPolicy};
use crate::domain::{ids, passwords, Email, EndUser, EndUserRole, Entitlement, LicenseType, PlanStart, RuleViolation};
use crate::mail::templates::{self, Budget, TemplateError, CREDENTIALS, INVITATION, SIGN_IN};
use crate::store::mail::{self as db, MailFilter, OutboxMail, TemplateOverride};
use crate::store::{catalogue as catalogue_db, customers as customers_db, entitlements as entitlements_db};
use crate::store::{tenants as tenants_db, Store, StoreError};

/// What the server knows about mail that the use cases need.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The base of links in mails.
    pub public_url: String,
    /// The operator's sender address, and the domains tenants may choose one in.
    pub sender: SenderPolicy,
    /// How long a password set-up link works.
    pub setup_link_lifetime: Duration,
}

#[derive(Serialize)]
struct EntitlementLines {
    product: String,
    edition: String,
    plan: String,
    offering: String,
    sku: String,
    seats: i64,
    expires: String,
    activation_code: Option<String>,
}

fn expiry_text(e: &Entitlement) -> String {
    match (e.expires_at, e.plan.license_type, e.plan.start) {
        (Some(at), _, _) => at.format("%Y-%m-%d").to_string(),
        (None, LicenseType::Perpetual, _) => "no expiry (perpetual licence)".into(),
        (None, _, PlanStart::OnFirstActivation) => "one licence period from the first activation".into(),
        (None, _, _) => "no expiry".into(),
    }
}

/// Queues the credentials mail for `entitlements` (all of one customer) to `recipient`, in the
/// caller's transaction. Call [`Store::mail_queued`] after committing.
pub async fn queue_credentials(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    settings: &MailSettings,
    entitlements: &[Entitlement],
    recipient: &Email,
) -> ServiceResult<OutboxMail> {
    let first = entitlements.first().ok_or(ServiceError::NotFound("entitlement"))?;
    let tenant = found(tenants_db::get(conn, &ctx.tenant_id).await?, "tenant")?;
    let customer = found(
        customers_db::get_customer(conn, &ctx.tenant_id, &first.customer_id).await?,
        "customer",
    )?;
    let mut lines = Vec::new();
    let mut account_based = false;
    for e in entitlements {
        let t = &ctx.tenant_id;
        let offering = found(catalogue_db::get_offering(conn, t, &e.offering_id).await?, "offering")?;
        let product = found(catalogue_db::get_product(conn, t, &e.product_id).await?, "product")?;
        let edition = found(
            catalogue_db::get_edition(conn, t, &offering.edition_id).await?,
            "edition",
        )?;
        let plan = found(catalogue_db::get_plan(conn, t, &offering.plan_id).await?, "plan")?;
        account_based |= product.account_based;
        lines.push(EntitlementLines {
            product: product.name.to_string(),
            edition: edition.name.to_string(),
            plan: plan.name.to_string(),
            offering: offering.name.to_string(),
            sku: e.sku.to_string(),
            seats: e.terms.seat_count,
            expires: expiry_text(e),
            activation_code: (!product.account_based).then(|| e.activation_code.to_string()),
        });
    }
    let user = customers_db::find_end_user_by_email(conn, &ctx.tenant_id, recipient).await?;
    let (setup_url, setup_expires) = if account_based {
        // A set-up link makes whoever reads it an account holder able to take seats: only an
        // actor allowed to add end users may send one to an address that is not the customer's
        // own or one of its end users'.
        let customers_own =
            customer.email.as_ref() == Some(recipient) || user.as_ref().is_some_and(|u| u.customer_id == customer.id);
        if !customers_own && !ctx.actor.adds_end_users {
            return Err(RuleViolation::new(
                "recipient_not_end_user",
                "credentials of account-based products go to the customer's email or one of its end users; \
                 an admin key can add end users",
            )
            .into());
        }
        let user = match user.clone() {
            Some(user) => user,
            None => create_end_user(conn, ctx, &customer.id, recipient).await?,
        };
        password_setup_link(conn, ctx, settings, &user).await?
    } else {
        (None, None)
    };
    let context = serde_json::json!({
        "tenant": {"name": tenant.name},
        "customer": {"name": customer.name.as_str()},
        "recipient": {"email": recipient.as_str(), "name": user.as_ref().and_then(|u| u.name.as_ref()).map(|n| n.as_str())},
        "portal_url": format!("{}/portal/{}", settings.public_url, ctx.tenant_id),
        "account_based": account_based,
        "setup_url": setup_url,
        "setup_expires": setup_expires.map(|at: DateTime<Utc>| at.format("%Y-%m-%d %H:%M UTC").to_string()),
        "entitlements": lines,
    });
    // Rendering waits for the mail worker: a tenant's template must not run inside this
    // transaction (holding the write lock) or on the async workers. The sender is settled then too.
    let mail = OutboxMail {
        id: ids::new_id("mail"),
        tenant_id: ctx.tenant_id.clone(),
        kind: CREDENTIALS.to_owned(),
        recipient: recipient.to_string(),
        from_name: sender::clean_display_name(&tenant.name),
        from_address: settings.sender.default_address().to_owned(),
        subject: None,
        text_body: String::new(),
        html_body: String::new(),
        entitlement_id: (entitlements.len() == 1).then(|| first.id.clone()),
        customer_id: Some(customer.id.clone()),
        status: "queued".into(),
        attempts: 0,
        next_attempt_at: ctx.now,
        last_error: None,
        created_at: ctx.now,
        sent_at: None,
        render_context: Some(context.to_string()),
    };
    db::enqueue(conn, &mail).await?;
    let ids: Vec<&str> = entitlements.iter().map(|e| e.id.as_str()).collect();
    let summary = serde_json::json!({"kind": CREDENTIALS, "recipient": recipient.as_str(), "entitlements": ids});
    record(conn, ctx, "mail.queued", "mail", &mail.id, summary).await?;
    Ok(mail)
}

/// Queues a portal sign-in link to an end user, in the caller's transaction. Call
/// [`Store::mail_queued`] after committing.
pub async fn queue_sign_in_link(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    settings: &MailSettings,
    user: &EndUser,
    link: &str,
    expires_at: DateTime<Utc>,
) -> ServiceResult<OutboxMail> {
    let tenant = found(tenants_db::get(conn, &ctx.tenant_id).await?, "tenant")?;
    let context = serde_json::json!({
        "tenant": {"name": tenant.name},
        "recipient": {"email": user.email.as_str(), "name": user.name.as_ref().map(|n| n.as_str())},
        "link_url": link,
        "link_expires": expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    });
    let mail = OutboxMail {
        id: ids::new_id("mail"),
        tenant_id: ctx.tenant_id.clone(),
        kind: SIGN_IN.to_owned(),
        recipient: user.email.to_string(),
        from_name: sender::clean_display_name(&tenant.name),
        from_address: settings.sender.default_address().to_owned(),
        subject: None,
        text_body: String::new(),
        html_body: String::new(),
        entitlement_id: None,
        customer_id: Some(user.customer_id.clone()),
        status: "queued".into(),
        attempts: 0,
        next_attempt_at: ctx.now,
        last_error: None,
        created_at: ctx.now,
        sent_at: None,
        render_context: Some(context.to_string()),
    };
    db::enqueue(conn, &mail).await?;
    let summary = serde_json::json!({"kind": SIGN_IN, "recipient": user.email.as_str()});
    record(conn, ctx, "mail.queued", "mail", &mail.id, summary).await?;
    Ok(mail)
}

/// Queues a staff member's invitation to the console with the link to choose their password, in
/// the caller's transaction. Call [`Store::mail_queued`] after committing.
pub async fn queue_invitation(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    settings: &MailSettings,
    member: &crate::domain::staff::StaffMember,
    link: &str,
    expires_at: DateTime<Utc>,
) -> ServiceResult<OutboxMail> {
    let tenant = found(tenants_db::get(conn, &ctx.tenant_id).await?, "tenant")?;
    let context = serde_json::json!({
        "tenant": {"name": tenant.name},
        "recipient": {"email": member.email.as_str()},
        "role": member.role.as_str(),
        "console_url": format!("{}/admin/{}", settings.public_url, ctx.tenant_id),
        "link_url": link,
        "link_expires": expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    });
    let mail = OutboxMail {
        id: ids::new_id("mail"),
        tenant_id: ctx.tenant_id.clone(),
        kind: INVITATION.to_owned(),
        recipient: member.email.to_string(),
        from_name: sender::clean_display_name(&tenant.name),
        from_address: settings.sender.default_address().to_owned(),
        subject: None,
        text_body: String::new(),
        html_body: String::new(),
        entitlement_id: None,
        customer_id: None,
        status: "queued".into(),
        attempts: 0,
        next_attempt_at: ctx.now,
        last_error: None,
        created_at: ctx.now,
        sent_at: None,
        render_context: Some(context.to_string()),
    };
    db::enqueue(conn, &mail).await?;
    let summary = serde_json::json!({"kind": INVITATION, "recipient": member.email.as_str()});
    record(conn, ctx, "mail.queued", "mail", &mail.id, summary).await?;
    Ok(mail)
}

async fn create_end_user(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    customer_id: &str,
    email: &Email,
) -> ServiceResult<EndUser> {
    let user = EndUser {
        id: ids::new_id("usr"),
        customer_id: customer_id.to_owned(),
        email: email.clone(),
        name: None,
        role: EndUserRole::Admin,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    customers_db::insert_end_user(conn, &ctx.tenant_id, &user).await?;
    record(
        conn,
        ctx,
        "end_user.created",
        "end_user",
        &user.id,
        super::snapshot(&user),
    )
    .await?;
    Ok(user)
}

/// A single-use, expiring link to choose a password, unless the end user has one already.
async fn password_setup_link(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    settings: &MailSettings,
    user: &EndUser,
) -> ServiceResult<(Option<String>, Option<DateTime<Utc>>)> {
    let has_password = customers_db::end_user_credentials(conn, &ctx.tenant_id, user.email.as_str())
        .await?
        .is_some_and(|(_, hash)| hash.is_some());
    if has_password {
        return Ok((None, None));
    }
    let token = ids::random_token(32);
    let expires_at = ctx.now + settings.setup_link_lifetime;
    db::insert_setup_token(conn, &hash_secret(&token), &ctx.tenant_id, &user.id, expires_at).await?;
    Ok((
        Some(format!("{}/portal/set-password?token={token}", settings.public_url)),
        Some(expires_at),
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendCredentials {
    /// Default: the customer's email, else its first admin end user's.
    pub to: Option<Email>,
}

/// Queues the entitlement's credentials again (support's "resend").
pub async fn resend_credentials(
    store: &Store,
    ctx: &Ctx,
    settings: &MailSettings,
    entitlement_id: &str,
    input: ResendCredentials,
) -> ServiceResult<OutboxMail> {
    let mut tx = store.begin().await?;
    let entitlement = found(
        entitlements_db::get(&mut tx, &ctx.tenant_id, entitlement_id).await?,
        "entitlement",
    )?;
    let recipient = match input.to {
        Some(to) => to,
        None => default_recipient(&mut tx, ctx, &entitlement.customer_id).await?,
    };
    let mail = queue_credentials(&mut tx, ctx, settings, std::slice::from_ref(&entitlement), &recipient).await?;
    tx.commit().await?;
    store.mail_queued();
    Ok(mail)
}

async fn default_recipient(conn: &mut AnyConnection, ctx: &Ctx, customer_id: &str) -> ServiceResult<Email> {
    let customer = found(
        customers_db::get_customer(conn, &ctx.tenant_id, customer_id).await?,
        "customer",
    )?;
    if let Some(email) = customer.email {
        return Ok(email);
    }
    let users = customers_db::list_end_users(conn, &ctx.tenant_id, Some(customer_id), "", 200).await?;
    users
        .into_iter()
        .find(|u| u.role == EndUserRole::Admin)
        .map(|u| u.email)
        .ok_or_else(|| {
            RuleViolation::new(
                "no_recipient",
                "the customer has no email and no admin end user: say `to`",
            )
            .into()
        })
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailQuery {
    pub entitlement_id: Option<String>,
    pub customer_id: Option<String>,
    /// `queued`, `sending`, `sent` or `failed`.
    pub status: Option<String>,
    #[param(inline)]
    pub limit: Option<crate::domain::PageLimit>,
    pub after: Option<String>,
}

pub async fn list(store: &Store, ctx: &Ctx, query: &MailQuery) -> ServiceResult<Page<OutboxMail>> {
    let paging = Paging {
        limit: query.limit,
        after: query.after.clone(),
    };
    paging.check()?;
    let filter = MailFilter {
        entitlement_id: query.entitlement_id.as_deref(),
        customer_id: query.customer_id.as_deref(),
        status: query.status.as_deref(),
        after: paging.after(),
        limit: paging.fetch_limit(),
    };
    let mails = db::list(&mut *store.read().await?, &ctx.tenant_id, &filter).await?;
    Ok(paging.page(mails, |m| &m.id))
}

/// A tenant's template for one kind of mail: the kind, and the parts it overrides (unset parts
/// use the built-in template).
// The fields are spelled out rather than a flattened `TemplateOverride`: flattening a struct that
// refuses unknown fields makes OpenAPI's `allOf` refuse `kind`, so every answer broke the schema.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailTemplate {
    /// `credentials`.
    pub kind: String,
    /// The sender's display name (default: the tenant's name). One line, at most 64 characters.
    pub from_name: Option<String>,
    /// The sender address: only in a domain the server's operator allows (default: the server's).
    pub from_address: Option<String>,
    /// A template (MiniJinja syntax), like the bodies.
    pub subject: Option<String>,
    pub text_body: Option<String>,
    /// HTML-escaped automatically: `{{ customer.name }}` cannot inject markup.
    pub html_body: Option<String>,
}

impl MailTemplate {
    fn new(kind: &str, t: TemplateOverride) -> MailTemplate {
        MailTemplate {
            kind: kind.to_owned(),
            from_name: t.from_name,
            from_address: t.from_address,
            subject: t.subject,
            text_body: t.text_body,
            html_body: t.html_body,
        }
    }

    fn overrides(&self) -> TemplateOverride {
        TemplateOverride {
            from_name: self.from_name.clone(),
            from_address: self.from_address.clone(),
            subject: self.subject.clone(),
            text_body: self.text_body.clone(),
            html_body: self.html_body.clone(),
        }
    }
}

pub async fn templates(store: &Store, ctx: &Ctx) -> ServiceResult<Page<MailTemplate>> {
    let mut conn = store.read().await?;
    let mut data = Vec::new();
    for kind in templates::KINDS {
        data.push(MailTemplate::new(
            kind,
            db::template(&mut conn, &ctx.tenant_id, kind).await?,
        ));
    }
    Ok(Page { data, next_after: None })
}

/// Renders a template on every sample under the render budget: the samples' mails, or why it
/// is refused (`invalid_template`, `template_too_expensive`).
async fn try_on_samples(input: &MailTemplate) -> ServiceResult<Vec<templates::Rendered>> {
    let (kind, template) = (input.kind.clone(), input.overrides());
    // Rendering is CPU work (up to the budget): off the async workers.
    let tried = tokio::task::spawn_blocking(move || {
        templates::samples()
            .iter()
            .map(|sample| templates::render(&kind, &template, sample, Budget::Limited))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| StoreError::Other(anyhow::anyhow!("template rendering task: {e}")))?;
    tried.map_err(|error| match error {
        TemplateError::TooExpensive { .. } => RuleViolation::new("template_too_expensive", error.to_string()).into(),
        TemplateError::Invalid { .. } => RuleViolation::new("invalid_template", error.to_string()).into(),
    })
}

/// What a template would send, on the sample data, without saving it (the console's preview):
/// the same checks as [`put_template`], one rendered mail per sample.
pub async fn preview_template(settings: &MailSettings, input: MailTemplate) -> ServiceResult<Vec<templates::Rendered>> {
    if !templates::KINDS.contains(&input.kind.as_str()) {
        return Err(RuleViolation::new("unknown_mail_kind", format!("no mail kind {:?}", input.kind)).into());
    }
    if let Some(address) = &input.from_address {
        settings.sender.check(address)?;
    }
    if let Some(name) = &input.from_name {
        sender::check_display_name(name)?;
    }
    try_on_samples(&input).await
}

/// Sets a tenant's template, after rendering it with sample data under the render budget: a broken
/// template is refused (`invalid_template`), and so is one too expensive to render
/// (`template_too_expensive`). The sender address must be one the operator allows.
pub async fn put_template(
    store: &Store,
    ctx: &Ctx,
    settings: &MailSettings,
    input: MailTemplate,
) -> ServiceResult<MailTemplate> {
    if !templates::KINDS.contains(&input.kind.as_str()) {
        return Err(RuleViolation::new("unknown_mail_kind", format!("no mail kind {:?}", input.kind)).into());
    }
    if let Some(address) = &input.from_address {
        settings.sender.check(address)?;
    }
    if let Some(name) = &input.from_name {
        sender::check_display_name(name)?;
    }
    try_on_samples(&input).await?;
    let mut tx = store.begin().await?;
    db::put_template(&mut tx, &ctx.tenant_id, &input.kind, &input.overrides(), ctx.now).await?;
    record(
        &mut tx,
        ctx,
        "mail_template.updated",
        "mail_template",
        &input.kind,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(input)
}

/// Whether a set-up link can still be used.
pub async fn setup_link_valid(store: &Store, token: &str) -> ServiceResult<bool> {
    Ok(db::setup_token_valid(&mut *store.read().await?, &hash_secret(token), super::now()).await?)
}

/// Uses a set-up link once to set the end user's password.
pub async fn set_password_with_link(store: &Store, token: &str, password: String) -> ServiceResult<()> {
    passwords::check_strength(&password)?;
    // The token first: hashing costs memory and time, and made-up tokens must not buy any.
    if !setup_link_valid(store, token).await? {
        return Err(RuleViolation::new("invalid_link", "this link was used already or has expired").into());
    }
    let hash = super::hashing::run(move || passwords::hash(&password))
        .await?
        .map_err(|e| StoreError::Other(anyhow::anyhow!("password hashing: {e}")))?;
    let now = super::now();
    let mut tx = store.begin().await?;
    let (tenant_id, user_id) = db::use_setup_token(&mut tx, &hash_secret(token), now)
        .await?
        .ok_or_else(|| RuleViolation::new("invalid_link", "this link was used already or has expired"))?;
    customers_db::set_password(&mut tx, &tenant_id, &user_id, &hash).await?;
    let ctx = Ctx {
        tenant_id,
        actor: super::Actor {
            kind: super::ActorKind::EndUser,
            id: Some(user_id.clone()),
            ip: None,
            adds_end_users: false,
        },
        now,
    };
    record(
        &mut tx,
        &ctx,
        "end_user.password_set",
        "end_user",
        &user_id,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The outbox as metrics see it.
pub struct QueueStats {
    pub queued: i64,
    /// How long the oldest waiting mail has waited (0 when none waits).
    pub oldest_age_seconds: f64,
}

pub async fn queue_stats(store: &Store) -> ServiceResult<QueueStats> {
    let depth = db::queue_depth(&mut *store.read().await?).await?;
    let oldest_age_seconds = depth
        .oldest_created_at
        .map_or(0.0, |at| (super::now() - at).num_milliseconds().max(0) as f64 / 1000.0);
    Ok(QueueStats {
        queued: depth.queued,
        oldest_age_seconds,
    })
}

/// Empties the bodies of ended mails past their retention (`mail_retention_days`), in bounded
/// batches; how many.
pub async fn purge_bodies(store: &Store, now: DateTime<Utc>) -> ServiceResult<u64> {
    let mut total = 0;
    loop {
        let purged = db::purge_bodies(&mut *store.write_conn().await?, now, 500).await?;
        total += purged;
        if purged < 500 {
            return Ok(total);
        }
    }
}
