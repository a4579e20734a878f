//! Reading a password: from standard input with `--password-stdin`, or from a no-echo prompt on a
//! terminal. Never from an argument, where it would show in `ps` and shell history.

use std::io::{BufRead, IsTerminal, Write};

use nix::sys::termios::{self, LocalFlags, SetArg};

use super::Failure;

pub fn password(from_stdin: bool) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    let password = if from_stdin {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::new(format!("cannot read the password from stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else if stdin.is_terminal() {
        prompt_without_echo("Password: ")?
    } else {
        return Err(Failure::usage(
            "no password given: pipe it in with --password-stdin, or run on a terminal to be prompted",
        ));
    };
    if password.is_empty() {
        return Err(Failure::usage("the password is empty"));
    }
    Ok(password)
}

fn prompt_without_echo(prompt: &str) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(&stdin)
        .map_err(|e| Failure::new(format!("cannot read terminal settings: {e}")))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    termios::tcsetattr(&stdin, SetArg::TCSANOW, &quiet)
        .map_err(|e| Failure::new(format!("cannot turn off terminal echo: {e}")))?;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    read.map_err(|e| Failure::new(format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
