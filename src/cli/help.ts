import { Help, type HelpConfiguration } from 'commander';

/** Joins a description's hard line breaks into spaces, so commander wraps it to the terminal's width. */
const oneLine = (s: string): string => s.replace(/[ \t]*\n[ \t]*/g, ' ');

/**
 * Help settings for every `vouchsafe` command (commander copies them to subcommands): descriptions written
 * over several source lines are joined before wrapping, so `--help` is not broken at the source's line ends.
 * Text added with `addHelpText` (examples) keeps its lines.
 */
export const unwrappedHelp: HelpConfiguration = {
  commandDescription(cmd) {
    return oneLine(Help.prototype.commandDescription.call(this, cmd));
  },
  subcommandDescription(cmd) {
    return oneLine(Help.prototype.subcommandDescription.call(this, cmd));
  },
  optionDescription(option) {
    return oneLine(Help.prototype.optionDescription.call(this, option));
  },
  argumentDescription(argument) {
    return oneLine(Help.prototype.argumentDescription.call(this, argument));
  },
};
