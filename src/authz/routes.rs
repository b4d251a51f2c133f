//! Which policy action guards each route. The HTTP layer refuses a request on a route that is
//! missing here (fail closed), and a test checks that every route the routers declare is
//! listed. `PUBLIC` routes carry no data and take no decision.

pub const PUBLIC: &str = "public";

/// (method, path template, action). For routes whose action depends on the body (for
/// example an update that changes members, or a user deleting their own message versus a
/// moderator's), the entry names the entry-point action and the handler asks for the
/// specific ones.
pub const ROUTE_ACTIONS: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", PUBLIC),
    ("GET", "/openapi.json", PUBLIC),
    ("GET", "/usage", "ReadUsage"),
    ("GET", "/app", "ReadAppSettings"),
    // Only `revoke_tokens_issued_before` is updatable (app-wide token revocation).
    ("PATCH", "/app", "ManageRoles"),
    ("GET", "/connect", "Connect"),
    ("GET", "/users", "QueryUsers"),
    ("POST", "/users", "UpsertUsers"),
    // Setting `revoke_tokens_issued_before` also asks for `ManageRoles`.
    ("PATCH", "/users", "UpdateUser"),
    // Server-side only (the API secret), like Stream's.
    ("POST", "/users/{id}/deactivate", "ManageRoles"),
    ("POST", "/users/{id}/reactivate", "ManageRoles"),
    ("POST", "/users/deactivate", "ManageRoles"),
    ("POST", "/users/reactivate", "ManageRoles"),
    ("POST", "/users/restore", "ManageRoles"),
    ("GET", "/unread", "ReadUnreadCounts"),
    ("POST", "/channels", "QueryChannels"),
    ("POST", "/channels/{type}/query", "ReadChannel"),
    ("POST", "/channels/{type}/{id}/query", "ReadChannel"),
    ("POST", "/channels/{type}/{id}", "UpdateChannel"),
    ("PATCH", "/channels/{type}/{id}", "UpdateChannel"),
    ("DELETE", "/channels/{type}/{id}", "DeleteChannel"),
    ("POST", "/channels/{type}/{id}/message", "SendMessage"),
    ("POST", "/channels/{type}/{id}/read", "MarkRead"),
    ("POST", "/channels/{type}/{id}/unread", "MarkRead"),
    ("POST", "/channels/{type}/{id}/event", "SendTypingEvents"),
    (
        "POST",
        "/channels/{type}/{id}/stop-watching",
        "QueryChannels",
    ),
    ("POST", "/channels/{type}/{id}/truncate", "TruncateChannel"),
    ("GET", "/messages/{id}", "ReadChannel"),
    ("POST", "/messages/{id}", "UpdateOwnMessage"),
    ("PUT", "/messages/{id}", "UpdateOwnMessage"),
    ("DELETE", "/messages/{id}", "DeleteOwnMessage"),
    ("GET", "/messages/{id}/replies", "ReadChannel"),
    ("POST", "/messages/{id}/reaction", "SendReaction"),
    ("DELETE", "/messages/{id}/reaction/{type}", "SendReaction"),
    // Entry decision on the app; each channel searched is then asked for SearchMessages.
    ("GET", "/search", "QueryChannels"),
    // Messages and reactions (issue 16): who reacted, pins, messages by id, actions.
    ("GET", "/messages/{id}/reactions", "ReadChannel"),
    ("POST", "/messages/{id}/reactions", "ReadChannel"),
    // Ward has no commands: after the read decision every action is refused.
    ("POST", "/messages/{id}/action", "SendMessage"),
    (
        "GET",
        "/channels/{type}/{id}/pinned_messages",
        "ReadChannel",
    ),
    ("GET", "/channels/{type}/{id}/messages", "ReadChannel"),
    // Off unless WARD_URL_ENRICHMENT; then for signed-in users (not anonymous).
    ("GET", "/og", "EnrichUrl"),
    ("GET", "/audit/entries", "ReadAuditLog"),
    ("GET", "/audit/checkpoint", "ReadAuditLog"),
    ("GET", "/audit/proof/inclusion", "ReadAuditLog"),
    ("GET", "/audit/proof/consistency", "ReadAuditLog"),
    ("GET", "/audit/verifier-key", "ReadAuditLog"),
    // Interactive login: each handler authenticates its session itself; none serves chat
    // data. `chat-token` asks the policies for `Connect`.
    ("POST", "/auth/login", PUBLIC),
    ("POST", "/auth/logout", PUBLIC),
    ("GET", "/auth/session", PUBLIC),
    ("GET", "/auth/sessions", PUBLIC),
    ("DELETE", "/auth/sessions", PUBLIC),
    ("DELETE", "/auth/sessions/{id}", PUBLIC),
    ("POST", "/auth/totp/enroll", PUBLIC),
    ("POST", "/auth/totp/verify", PUBLIC),
    ("POST", "/auth/recovery", PUBLIC),
    ("POST", "/auth/chat-token", "Connect"),
    ("GET", "/admin/sso/providers", "ManageSso"),
    ("GET", "/admin/sso/providers/{id}", "ManageSso"),
    ("PUT", "/admin/sso/providers/{id}", "ManageSso"),
    ("GET", "/admin/auth/2fa-policy", "ManageSso"),
    ("PUT", "/admin/auth/2fa-policy", "ManageSso"),
    ("POST", "/admin/users/{id}/deprovision", "ManageRoles"),
    ("GET", "/compliance/holds", "ManageLegalHold"),
    ("POST", "/compliance/holds", "ManageLegalHold"),
    ("POST", "/compliance/holds/{id}/release", "ManageLegalHold"),
    ("GET", "/compliance/retention", "ManageRetention"),
    ("POST", "/compliance/retention/run", "ManageRetention"),
    ("DELETE", "/users/{id}", "RunGdprErase"),
    ("POST", "/users/delete", "RunGdprErase"),
    // The action depends on the task's kind; the handler asks for it.
    ("GET", "/tasks/{id}", "RunGdprErase"),
    ("POST", "/export/users", "RunGdprExport"),
    // Authenticated by the URL's HMAC and expiry (a presigned link), audited.
    ("GET", "/exports/{task}/{file}", PUBLIC),
    ("GET", "/users/{id}/export", "RunGdprExport"),
    // OpenID Connect RP: the login redirect and the IdP's redirect back; the OIDC module
    // verifies (state bound to the browser, PKCE, nonce, ID token) and serves no chat data.
    ("GET", "/auth/oidc/{provider}/login", PUBLIC),
    ("GET", "/auth/oidc/{provider}/callback", PUBLIC),
    // SAML 2.0 SP: the browser arrives without a session; the SAML module verifies the
    // messages (signatures, InResponseTo, replay) and serves no chat data.
    ("GET", "/auth/saml/{provider}/metadata", PUBLIC),
    ("GET", "/auth/saml/{provider}/login", PUBLIC),
    ("POST", "/auth/saml/{provider}/acs", PUBLIC),
    ("GET", "/auth/saml/{provider}/logout", PUBLIC),
    ("POST", "/auth/saml/{provider}/logout", PUBLIC),
    // Uploads (issue 16). App-level uploads ask the App actions; a download asks
    // `ReadChannel` (or `ReadAppFile`) for the user its signed link names, or the caller.
    ("POST", "/channels/{type}/{id}/file", "UploadFile"),
    ("DELETE", "/channels/{type}/{id}/file", "DeleteFile"),
    ("POST", "/channels/{type}/{id}/image", "UploadFile"),
    ("DELETE", "/channels/{type}/{id}/image", "DeleteFile"),
    ("POST", "/uploads/file", "UploadAppFile"),
    ("DELETE", "/uploads/file", "DeleteAppFile"),
    ("POST", "/uploads/image", "UploadAppFile"),
    ("DELETE", "/uploads/image", "DeleteAppFile"),
    ("GET", "/uploads/blob/{id}", "ReadChannel"),
    ("GET", "/uploads/blob/{id}/{name}", "ReadChannel"),
    // Threads, reads and delivery (issue 16). Entry decisions on the app; each thread's
    // channel is then asked for ReadChannel (UpdateThread to change it), each channel
    // marked for MarkRead.
    ("POST", "/threads", "QueryThreads"),
    ("GET", "/threads/{id}", "ReadChannel"),
    ("PATCH", "/threads/{id}", "UpdateThread"),
    ("POST", "/channels/read", "MarkChannelsRead"),
    ("POST", "/channels/delivered", "MarkChannelsDelivered"),
    // Issue 16 item 8 (tier 2): polls. Entry decisions; changing a poll also needs its
    // creator (or an admin), voting asks `CastPollVote` on the poll's channel, and reading a
    // poll asks `ReadChannel` there unless one created it.
    ("POST", "/polls", "CreatePoll"),
    ("PUT", "/polls", "CreatePoll"),
    ("POST", "/polls/query", "QueryPolls"),
    ("GET", "/polls/{id}", "QueryPolls"),
    ("PATCH", "/polls/{id}", "CreatePoll"),
    ("DELETE", "/polls/{id}", "CreatePoll"),
    ("POST", "/polls/{id}/options", "CreatePoll"),
    ("PUT", "/polls/{id}/options", "CreatePoll"),
    ("GET", "/polls/{id}/options/{option_id}", "QueryPolls"),
    ("DELETE", "/polls/{id}/options/{option_id}", "CreatePoll"),
    ("POST", "/polls/{id}/votes", "QueryPolls"),
    (
        "POST",
        "/messages/{id}/polls/{poll_id}/vote",
        "CastPollVote",
    ),
    (
        "DELETE",
        "/messages/{id}/polls/{poll_id}/vote/{vote_id}",
        "CastPollVote",
    ),
    // Drafts and reminders are the caller's own; each also asks the channel's decision
    // (`SendMessage`/`SendReply` to save a draft, `ReadChannel` otherwise).
    ("POST", "/channels/{type}/{id}/draft", "ManageDrafts"),
    ("GET", "/channels/{type}/{id}/draft", "ManageDrafts"),
    ("DELETE", "/channels/{type}/{id}/draft", "ManageDrafts"),
    ("POST", "/drafts/query", "ManageDrafts"),
    ("POST", "/messages/{id}/reminders", "ManageReminders"),
    ("PATCH", "/messages/{id}/reminders", "ManageReminders"),
    ("DELETE", "/messages/{id}/reminders", "ManageReminders"),
    ("POST", "/reminders/query", "ManageReminders"),
    // User groups: read by signed-in users, managed by admins (and the API secret).
    ("GET", "/usergroups", "ReadUserGroups"),
    ("POST", "/usergroups", "ManageUserGroups"),
    ("GET", "/usergroups/search", "ReadUserGroups"),
    ("GET", "/usergroups/{id}", "ReadUserGroups"),
    ("PUT", "/usergroups/{id}", "ManageUserGroups"),
    ("DELETE", "/usergroups/{id}", "ManageUserGroups"),
    ("POST", "/usergroups/{id}/members", "ManageUserGroups"),
    (
        "POST",
        "/usergroups/{id}/members/delete",
        "ManageUserGroups",
    ),
    // Each channel named is then asked for `ReadChannel`.
    ("POST", "/sync", "SyncEvents"),
    // push devices and the warm-up call (issue 16)
    ("POST", "/devices", "ManageDevices"),
    ("GET", "/devices", "ManageDevices"),
    ("DELETE", "/devices", "ManageDevices"),
    ("POST", "/push_preferences", "ManageDevices"),
    ("GET", "/hi", PUBLIC),
    ("POST", "/guest", "CreateGuest"),
    // Members (issue 16, item 4). The handler decides on the channel named in `payload`.
    ("GET", "/members", "ReadChannel"),
    // Each channel is decided (and recorded) on its own, as `DELETE /channels/{type}/{id}`.
    ("POST", "/channels/delete", "DeleteChannel"),
    // Own membership (`UpdateOwnMembership`), someone else's (`UpdateChannelMembers`).
    (
        "PATCH",
        "/channels/{type}/{id}/member",
        "UpdateOwnMembership",
    ),
    (
        "PATCH",
        "/channels/{type}/{id}/member/{user_id}",
        "UpdateOwnMembership",
    ),
    ("POST", "/channels/{type}/{id}/hide", "UpdateOwnMembership"),
    ("POST", "/channels/{type}/{id}/show", "UpdateOwnMembership"),
];

/// Where Ward's own endpoints live (operations, the audit log, interactive login and SSO,
/// administration, compliance, export downloads): everything else is the Stream protocol.
/// `GET /openapi.json` describes exactly the routes under these, and a test holds the two
/// together.
const WARD_OWN_PREFIXES: &[&str] = &[
    "/healthz",
    "/metrics",
    "/usage",
    "/openapi.json",
    "/audit/",
    "/auth/",
    "/admin/",
    "/compliance/",
    "/exports/",
];

/// Whether a route template is one of Ward's own (not the Stream protocol's).
pub fn is_ward_own(path: &str) -> bool {
    WARD_OWN_PREFIXES.iter().any(|p| path.starts_with(p))
}

pub fn action_for(method: &str, path: &str) -> Option<&'static str> {
    ROUTE_ACTIONS
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, a)| *a)
}
