from passlib.hash import bcrypt, sha512_crypt

from services.auth.passwords import Passwords
from shared.config.auth import AuthSettings

SETTINGS = AuthSettings(admin_token="admin-token-0123456789", service_token="service-token-0123456789")


async def test_new_hashes_are_argon2id_with_owasps_costs_by_default():
    passwords = Passwords(SETTINGS)
    stored = await passwords.hash("correct horse")
    # OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await passwords.verify("correct horse", stored) == (True, None)
    assert await passwords.verify("wrong horse", stored) == (False, None)


async def test_old_schemes_verify_and_come_back_as_argon2():
    passwords = Passwords(SETTINGS)
    # The costs such hashes typically carry: bcrypt's cost 10, glibc crypt(3)'s 5000 rounds.
    for old in (
        bcrypt.using(rounds=10).hash("correct horse"),
        sha512_crypt.using(rounds=5000).hash("correct horse"),
    ):
        matches, replacement = await passwords.verify("correct horse", old)
        assert matches
        assert replacement is not None and replacement.startswith("$argon2id$")
        assert await passwords.verify("correct horse", replacement) == (True, None)
        assert await passwords.verify("wrong horse", old) == (False, None)


async def test_argon2_hashes_with_other_costs_are_upgraded_too():
    cheap = Passwords(
        SETTINGS.model_copy(update={"auth_argon2_memory_kib": 1024, "auth_argon2_time_cost": 1})
    )
    stored = await cheap.hash("correct horse")
    matches, replacement = await Passwords(SETTINGS).verify("correct horse", stored)
    assert matches and replacement is not None and "m=19456,t=2,p=1$" in replacement


async def test_hashes_made_with_the_former_defaults_verify_and_are_upgraded():
    """Users created before the defaults became OWASP's (64 MiB, t=3, p=4) still log in; their hash is
    replaced by one with the current costs, as passlib's deprecated="auto" decides for any other costs."""
    former = Passwords(
        SETTINGS.model_copy(
            update={"auth_argon2_memory_kib": 65536, "auth_argon2_time_cost": 3, "auth_argon2_parallelism": 4}
        )
    )
    stored = await former.hash("correct horse")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    passwords = Passwords(SETTINGS)
    matches, replacement = await passwords.verify("correct horse", stored)
    assert matches and replacement is not None and replacement.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await passwords.verify("correct horse", replacement) == (True, None)
    assert await passwords.verify("wrong horse", stored) == (False, None)


async def test_no_user_costs_one_hash_check_and_never_matches():
    passwords = Passwords(SETTINGS)
    assert await passwords.verify("", None) == (False, None)
    assert passwords.verifications == 1


async def test_a_hash_in_no_known_format_matches_nothing():
    passwords = Passwords(SETTINGS)
    assert await passwords.verify("plain", "plain") == (False, None)
    assert passwords.verifications == 1
