//! The become password of a run: typed once at a prompt (`--ask-become-pass`, on a
//! terminal) or taken from `DROVER_BECOME_PASS`. It only ever travels to hosts on the
//! standard input of their `sudo -S` (see `engine::BecomePassword`).

use std::io::IsTerminal as _;
use std::sync::Arc;

use super::CliError;

/// The password for `sudo`, if the run has one.
pub(crate) fn password(ask: bool) -> Result<Option<Arc<str>>, CliError> {
    if ask {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Input(
                "--ask-become-pass needs a terminal to ask on; set DROVER_BECOME_PASS instead"
                    .into(),
            ));
        }
        let typed = rpassword::prompt_password("sudo password (become): ")
            .map_err(|e| CliError::Input(format!("cannot read the become password: {e}")))?;
        return Ok(Some(typed.into()));
    }
    Ok(std::env::var("DROVER_BECOME_PASS")
        .ok()
        .filter(|p| !p.is_empty())
        .map(Into::into))
}
