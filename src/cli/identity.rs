//! Who a command runs as. On the appliance the data dir belongs to the service user
//! (`streamforge`, mode 0700), and a database, WAL or key file that root created there would lock
//! the service out. So root working on a data dir that another user owns becomes that user before
//! touching it (`sudo streamforge account add …` just works), and anyone else who cannot enter
//! the data dir gets one line saying to use sudo instead of a database error.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{AccessFlags, Gid, Uid, User, access, geteuid, setgid, setgroups, setuid};

use super::Failure;

/// What to do about the data dir, decided from facts alone.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Stay,
    Become { uid: u32, gid: u32 },
    Refuse { owner: u32 },
}

/// The data dir as found: its owner, and whether we may enter and write it.
#[derive(Debug, Clone, Copy)]
struct Found {
    owner_uid: u32,
    owner_gid: u32,
    usable: bool,
}

fn decide(euid: u32, found: Option<Found>) -> Decision {
    match found {
        // Not there yet: whoever runs this creates it (the package creates the appliance's).
        None => Decision::Stay,
        Some(dir) if euid == 0 && dir.owner_uid != 0 => Decision::Become {
            uid: dir.owner_uid,
            gid: dir.owner_gid,
        },
        // Our own dir made read-only: the store says what it could not write.
        Some(dir) if !dir.usable && dir.owner_uid != euid => Decision::Refuse {
            owner: dir.owner_uid,
        },
        Some(_) => Decision::Stay,
    }
}

/// Runs the rest of the command as the data dir's owner when root, or explains that it cannot
/// be reached.
pub fn assume_data_dir_owner(data_dir: &Path) -> Result<(), Failure> {
    let found = match std::fs::metadata(data_dir) {
        Ok(metadata) => Some(Found {
            owner_uid: metadata.uid(),
            owner_gid: metadata.gid(),
            usable: access(
                data_dir,
                AccessFlags::R_OK | AccessFlags::W_OK | AccessFlags::X_OK,
            )
            .is_ok(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        // Its parent is closed to us: the same answer as a closed data dir.
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Some(Found {
            owner_uid: u32::MAX,
            owner_gid: u32::MAX,
            usable: false,
        }),
        Err(e) => {
            return Err(Failure::new(format!(
                "reading the data dir {}: {e}",
                data_dir.display()
            )));
        }
    };
    match decide(geteuid().as_raw(), found) {
        Decision::Stay => Ok(()),
        Decision::Become { uid, gid } => become_user(uid, gid).map_err(|e| {
            Failure::new(format!(
                "switching to {}, the owner of {}: {e}",
                user_name(uid),
                data_dir.display()
            ))
        }),
        Decision::Refuse { owner } => Err(Failure::new(format!(
            "{} belongs to {} and you cannot use it: run this with sudo",
            data_dir.display(),
            user_name(owner)
        ))),
    }
}

/// Drops root for good: the user's own group (else the dir's) and no supplementary groups.
fn become_user(uid: u32, dir_gid: u32) -> nix::Result<()> {
    let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
    let gid = user.as_ref().map_or(Gid::from_raw(dir_gid), |u| u.gid);
    setgroups(&[gid])?;
    setgid(gid)?;
    setuid(Uid::from_raw(uid))
}

fn user_name(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ if uid == u32::MAX => "another user".to_string(),
        _ => format!("user {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(owner_uid: u32, usable: bool) -> Option<Found> {
        Some(Found {
            owner_uid,
            owner_gid: owner_uid + 1,
            usable,
        })
    }

    #[test]
    fn root_becomes_the_owner_of_someone_else_s_data_dir() {
        assert_eq!(
            decide(0, dir(107, true)),
            Decision::Become { uid: 107, gid: 108 }
        );
        assert_eq!(decide(0, dir(0, true)), Decision::Stay, "root's own");
        assert_eq!(decide(0, None), Decision::Stay, "not created yet");
    }

    #[test]
    fn others_use_what_they_can_and_are_told_about_the_rest() {
        assert_eq!(decide(1000, dir(1000, true)), Decision::Stay);
        assert_eq!(
            decide(1000, dir(107, true)),
            Decision::Stay,
            "shared on purpose"
        );
        assert_eq!(
            decide(1000, dir(107, false)),
            Decision::Refuse { owner: 107 }
        );
        assert_eq!(decide(1000, None), Decision::Stay);
        assert_eq!(
            decide(1000, dir(1000, false)),
            Decision::Stay,
            "our own, read-only"
        );
    }
}
