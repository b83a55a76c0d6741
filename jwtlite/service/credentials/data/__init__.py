"""The data files the credential rules read: common passwords and Unicode's confusables.

Their sources, versions and licences are in this folder's ``README.md``."""
