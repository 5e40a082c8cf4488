#!/usr/bin/env python
"""Django's command-line entry point for the retention service."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # A setting the environment gives wrongly: its message says which and how to mend it; a traceback
        # through the settings module says nothing more.
        sys.stderr.write(f"configuration error: {error}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        # Ctrl-C before a command took it in hand (while Django and the libraries load) or in a command that
        # changes nothing: nothing was done that a traceback would explain.
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
