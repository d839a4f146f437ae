//! Who is calling, from the bus daemon's record of the caller's socket
//! credentials (`GetConnectionCredentials`): the D-Bus policy file already
//! limits admin methods, and this checks again inside edgeid, so a
//! mis-installed policy does not open enrollment to everyone.

use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zbus::names::BusName;

use crate::api::ApiError;

/// Root, or a member of this group, may administer.
#[derive(Debug, Clone)]
pub struct AdminPolicy {
    pub group_name: String,
    /// None when the group does not exist on this system: then only root.
    pub gid: Option<u32>,
}

impl AdminPolicy {
    pub fn new(group_name: &str) -> Self {
        let gid = nix::unistd::Group::from_name(group_name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw());
        if gid.is_none() {
            tracing::warn!(
                group = group_name,
                "the admin group does not exist: only root may administer"
            );
        }
        Self {
            group_name: group_name.to_owned(),
            gid,
        }
    }

    pub fn allows(&self, uid: u32, groups: &[u32]) -> bool {
        uid == 0 || self.gid.is_some_and(|g| groups.contains(&g))
    }
}

/// The caller's uid and groups. Groups come from the bus (dbus-daemon ≥
/// 1.14 and dbus-broker report them); failing that, from the user database.
pub async fn caller(
    conn: &zbus::Connection,
    header: &Header<'_>,
) -> Result<(u32, Vec<u32>), ApiError> {
    let (uid, creds) = credentials(conn, header).await?;
    let groups = match creds.unix_group_ids() {
        Some(g) => g.clone(),
        None => groups_of(uid),
    };
    Ok((uid, groups))
}

/// The caller's uid only (what the rate limit is kept by).
pub async fn caller_uid(conn: &zbus::Connection, header: &Header<'_>) -> Result<u32, ApiError> {
    Ok(credentials(conn, header).await?.0)
}

async fn credentials(
    conn: &zbus::Connection,
    header: &Header<'_>,
) -> Result<(u32, zbus::fdo::ConnectionCredentials), ApiError> {
    let sender = header
        .sender()
        .ok_or_else(|| ApiError::NotAuthorized("the call carries no sender".into()))?;
    let proxy = DBusProxy::new(conn)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot ask the bus about the caller: {e}")))?;
    let creds = proxy
        .get_connection_credentials(BusName::Unique(sender.to_owned()))
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read the caller's credentials: {e}")))?;
    let uid = creds.unix_user_id().ok_or_else(|| {
        ApiError::NotAuthorized("the bus did not report the caller's user id".into())
    })?;
    Ok((uid, creds))
}

fn groups_of(uid: u32) -> Vec<u32> {
    use nix::unistd::{User, getgrouplist};
    let Ok(Some(user)) = User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return Vec::new();
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return Vec::new();
    };
    getgrouplist(&name, user.gid)
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_default()
}

/// Refuses a caller who is neither root nor in the admin group.
pub async fn require_admin(
    conn: &zbus::Connection,
    header: &Header<'_>,
    policy: &AdminPolicy,
    action: &str,
) -> Result<u32, ApiError> {
    let (uid, groups) = caller(conn, header).await?;
    if policy.allows(uid, &groups) {
        Ok(uid)
    } else {
        tracing::warn!(uid, action, "D-Bus: admin call refused");
        Err(ApiError::NotAuthorized(format!(
            "{action} is for administrators: uid {uid} is neither root nor in group {}",
            policy.group_name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_or_the_group_only() {
        let p = AdminPolicy {
            group_name: "edgeid-admin".into(),
            gid: Some(990),
        };
        assert!(p.allows(0, &[]));
        assert!(p.allows(1000, &[100, 990]));
        assert!(!p.allows(1000, &[100]));
        let none = AdminPolicy {
            group_name: "missing".into(),
            gid: None,
        };
        assert!(!none.allows(1000, &[990]));
    }
}
