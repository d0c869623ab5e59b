//! Settings as flags: every argument of a clap command that reads an environment variable
//! (`#[arg(long, env = "RAVSOCK_…")]`) and was not given on the command line gets the value
//! [`Env::get`] finds for that variable, so clap's own order (flag, then environment, then
//! default) is kept and `.env` files and the original's names fill in below it.

use crate::Env;
use clap::Command;

/// `args` (as from `std::env::args`) with `--flag value` added for each argument of `command`,
/// or of the subcommand the args name, that has a value in `env` and is not on the command
/// line. The flags go right after the command or subcommand name, where clap reads them.
pub fn args_with_env(mut args: Vec<String>, command: &Command, env: &Env) -> Vec<String> {
    // The command and the subcommands the args name (`ravsock token create`), each with the
    // position after its name: a level's flags are read there.
    let mut levels = vec![(command, 1)];
    let mut level = command;
    for (i, arg) in args.iter().enumerate().skip(1) {
        match level.find_subcommand(arg) {
            Some(sub) => {
                level = sub;
                levels.push((sub, i + 1));
            }
            None if arg.starts_with('-') => {}
            None => break,
        }
    }
    // Deepest first, so that earlier positions stay valid.
    for (level, at) in levels.into_iter().rev() {
        let mut added = Vec::new();
        for arg in level.get_arguments() {
            let (Some(name), Some(long)) = (arg.get_env().and_then(|n| n.to_str()), arg.get_long()) else { continue };
            let flag = format!("--{long}");
            let given = args.iter().any(|a| *a == flag || a.starts_with(&format!("{flag}=")));
            if !given && let Some(value) = env.get(name) {
                added.push(format!("{flag}={value}"));
            }
        }
        args.splice(at..at, added);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    #[test]
    fn settings_become_flags_after_the_subcommand_that_takes_them() {
        let command = Command::new("ravpy").subcommand(
            Command::new("participate")
                .arg(Arg::new("server").long("server").env("RAVENV_TEST_UNSET_URL"))
                .arg(Arg::new("graph").long("graph")),
        );
        let mut env = Env::default();
        env.derive("RAVENV_TEST_UNSET_URL", "http://127.0.0.1:1".into());
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let out = args_with_env(args(&["ravpy", "participate", "--graph", "3"]), &command, &env);
        assert_eq!(out, args(&["ravpy", "participate", "--server=http://127.0.0.1:1", "--graph", "3"]));
        let given = args(&["ravpy", "participate", "--server=http://x:2"]);
        assert_eq!(args_with_env(given.clone(), &command, &env), given);
        command.try_get_matches_from(out).expect("clap accepts the flags");

        let top = Command::new("ravsock")
            .arg(Arg::new("db").long("database-url").env("RAVENV_TEST_UNSET_URL"))
            .subcommand(Command::new("token").subcommand(Command::new("create").arg(Arg::new("name").long("name"))));
        let out = args_with_env(args(&["ravsock", "token", "create", "--name", "n"]), &top, &env);
        assert_eq!(out, args(&["ravsock", "--database-url=http://127.0.0.1:1", "token", "create", "--name", "n"]));
        top.try_get_matches_from(out).expect("clap accepts the flags");
    }
}
