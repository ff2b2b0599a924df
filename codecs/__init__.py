"""Codecs: B2 profile v1 (decode/encode), ARL, and (later) returns, SEPA and message codecs."""
