"""``tl-kit cache``: what the hygiene cache holds per folder, and its removal
(:mod:`tl_kit.data.hygiene_cache`)."""

from __future__ import annotations

import argparse
import time

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import echo, print_json, rich_table


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "clear"),
                   help="list: what the cache holds, per folder; clear: remove entries")
    p.add_argument("folders", nargs="*", metavar="FOLDER",
                   help="clear: the entries of these data folders")
    p.add_argument("--gone", action="store_true",
                   help="clear: entries of folders that no longer exist, and leftover files")
    p.add_argument("--older-than", type=float, metavar="DAYS", dest="older_than_days",
                   help="clear: entries no load has used for DAYS days")
    p.add_argument("--all", action="store_true", dest="everything",
                   help="clear: everything in the cache")
    p.add_argument("--pixels", action="store_true", dest="pixels_only",
                   help="clear: only the kept pixel files (the big ones); the verdicts stay")
    p.add_argument("--dry-run", action="store_true",
                   help="clear: show what would be removed, remove nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args)
    return _clear(args)


def size(n: int) -> str:
    """Bytes as ``1.2 GB`` / ``340 kB`` / ``12 B``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _ago(t: float) -> str:
    """How long ago ``t`` was: ``just now``, ``5 min ago``, ``3 h ago``, ``12 days ago``."""
    s = max(0.0, time.time() - t)
    if s < 60:
        return "just now"
    if s < 3600:
        return f"{s // 60:.0f} min ago"
    if s < 86400:
        return f"{s // 3600:.0f} h ago"
    days = round(s / 86400)
    return f"{days} day{'s' if days != 1 else ''} ago"


def _list(args: argparse.Namespace) -> int:
    from tl_kit.data.hygiene_cache import cache_contents
    from tl_kit.errors import UserError

    if args.folders or args.gone or args.older_than_days is not None or args.everything \
            or args.pixels_only or args.dry_run:
        raise UserError("cache list takes no folders or clear options; did you mean "
                        "'tl-kit cache clear'?")
    contents = cache_contents()
    if args.json:
        print_json(contents.as_dict())
        return EXIT_OK
    if contents.where is None:
        echo("The tl_kit cache is turned off (TL_KIT_CACHE_DIR is set and empty).")
        return EXIT_OK
    if not contents.folders and not contents.strays and not contents.busy:
        echo(f"The tl_kit hygiene cache ({contents.where}) is empty.")
        return EXIT_OK
    rows = []
    for f in contents.folders:
        kept = ", ".join(f"{p.key}{'' if p.current else ' (old)'} {size(p.bytes)}"
                         for p in f.pixels) or "-"
        state = {True: "", False: " (gone)", None: ""}[f.exists]
        rows.append((f"{f.folder}{state}", f"c{f.channels}",
                     f"{f.files}" + (f" ({f.skipped} skipped)" if f.skipped else ""),
                     kept, size(f.bytes), _ago(f.last_used)))
    if contents.strays:
        rows.append(("(leftover files: --gone removes them)", "", str(len(contents.strays)),
                     "-", size(sum(n for _, n in contents.strays)), ""))
    for path, n, writer in contents.busy:
        rows.append((f"(being written by {writer}: {path.name})", "", "", "-", size(n),
                     _ago(path.stat().st_mtime) if path.exists() else ""))
    rich_table(f"tl_kit hygiene cache: {contents.where} ({size(contents.bytes)})",
               ("folder", "ch", "files", "pixels kept", "size", "last used"), rows,
               right=(2, 4))
    return EXIT_OK


def _clear(args: argparse.Namespace) -> int:
    from tl_kit.data.hygiene_cache import clear_cache

    removed = clear_cache(args.folders, gone=args.gone, older_than_days=args.older_than_days,
                          everything=args.everything, pixels_only=args.pixels_only,
                          dry_run=args.dry_run)
    freed = sum(n for _, n in removed)
    if args.json:
        print_json({"dry_run": args.dry_run, "bytes": freed,
                    "files": [{"file": str(p), "bytes": n} for p, n in removed]})
        return EXIT_OK
    verb = "would remove" if args.dry_run else "removed"
    for path, n in removed:
        echo(f"{verb} {path} ({size(n)})")
    echo(f"{verb} {len(removed)} file{'s' if len(removed) != 1 else ''}, {size(freed)}")
    return EXIT_OK


COMMAND = Subcommand(
    name="cache",
    help="show (list) or remove (clear) the hygiene cache's verdicts and kept pixels",
    description="Every load of a data folder keeps, in the hygiene/ folder of the user's "
    "cache ($TL_KIT_CACHE_DIR, else $XDG_CACHE_HOME/tl_kit, else ~/.cache/tl_kit), the "
    "hygiene verdict of each file "
    "(so the next load of an unchanged folder checks nothing again) and, for the in-memory "
    "path, the decoded pixels at each image size (the next load maps them, decoding "
    "nothing). 'list' shows them per folder with their size and when a load last used them; "
    "'clear' removes what the folders, --gone, --older-than and --all pick (any of them). "
    "Removing loses nothing but time: the next load checks and decodes again. Files a "
    "load is writing now are listed as busy and never removed.",
    add_arguments=_args,
    run=_run,
    needs_tensorflow=False,
    epilog="examples:\n"
    "  tl-kit cache list\n"
    "  tl-kit cache clear data/my_photos\n"
    "  tl-kit cache clear --gone --older-than 30\n"
    "  tl-kit cache clear --all --pixels --dry-run",
)
