"""tweepy, a well-known X client library, against the X API emulator.

Proves the emulator follows the protocol, not only our own client: tweepy
mints an app-only bearer token (Basic auth), calls a v1.1 endpoint with it,
signs OAuth 1.0a user-context requests, refreshes an OAuth 2.0 user token
and reads /2/users/me with it. tweepy only speaks https to api.twitter.com,
and so do these requests: the test gives them a proxy (HTTPS_PROXY) that
tunnels api.twitter.com:443 to a TLS front for the emulator, whose private
CA is REQUESTS_CA_BUNDLE. Nothing in the clients is patched.

usage: python tweepy_against_emulator.py  (keys and proxy from the environment)
"""

import os
import sys

import tweepy

key, secret = os.environ["X_API_KEY"], os.environ["X_API_KEY_SECRET"]
token, token_secret = os.environ["X_ACCESS_TOKEN"], os.environ["X_ACCESS_TOKEN_SECRET"]

app = tweepy.API(tweepy.OAuth2AppHandler(key, secret))
limits = app.rate_limit_status()
assert "resources" in limits, limits
print("app-only bearer: minted and accepted")

user = tweepy.API(tweepy.OAuth1UserHandler(key, secret, token, token_secret))
me = user.verify_credentials()
print("OAuth 1.0a user context: verified", me.screen_name)

wrong = tweepy.API(tweepy.OAuth1UserHandler(key, secret, token, "wrong" + token_secret[5:]))
try:
    wrong.verify_credentials()
except tweepy.errors.Unauthorized:
    print("OAuth 1.0a with a wrong token secret: refused")
else:
    sys.exit("a wrong token secret was accepted")

# Bearer invalidation, signed by an independent OAuth 1.0a implementation
# (requests-oauthlib, which tweepy itself uses) as X's reference page for
# POST oauth2/invalidate_token says: the app's consumer keys and the app
# owner's access token; the token to invalidate as a signed form parameter.
# tweepy has no call for it.
from urllib.parse import unquote

import requests
from requests_oauthlib import OAuth1

api = "https://api.twitter.com"
minted = requests.post(
    f"{api}/oauth2/token", auth=(key, secret), data={"grant_type": "client_credentials"}
).json()["access_token"]
bearer = unquote(minted)
basic = requests.post(f"{api}/oauth2/invalidate_token", auth=(key, secret), data={"access_token": bearer})
assert basic.status_code in (400, 401, 403), ("Basic must be refused", basic.status_code, basic.text)
signed = requests.post(
    f"{api}/oauth2/invalidate_token",
    auth=OAuth1(key, secret, token, token_secret),
    data={"access_token": bearer},
)
assert signed.status_code == 200, (signed.status_code, signed.text)
gone = requests.get(
    f"{api}/1.1/application/rate_limit_status.json", headers={"Authorization": f"Bearer {bearer}"}
)
assert gone.status_code == 401 and gone.json()["errors"][0]["code"] == 89, (gone.status_code, gone.text)
print("bearer invalidation: OAuth 1.0a with the owner's token accepted, Basic refused, old token then 401/89")

# OAuth 2.0 user context. tweepy's OAuth2UserHandler is requests-oauthlib's
# OAuth2Session: its refresh, as X's OAuth 2.0 guide describes it (form
# grant_type=refresh_token with client_id; Basic for a confidential client).
client_id, client_secret = os.environ["X_CLIENT_ID"], os.environ["X_CLIENT_SECRET"]
handler = tweepy.OAuth2UserHandler(
    client_id=client_id,
    redirect_uri="https://keyguard.invalid/callback",
    scope=["tweet.read", "users.read", "offline.access"],
    client_secret=client_secret,
)
tokens = handler.refresh_token(
    f"{api}/2/oauth2/token",
    refresh_token=os.environ["X_REFRESH_TOKEN"],
    auth=handler.auth,
    client_id=client_id,
)
assert tokens["refresh_token"] and tokens["expires_in"] > 0, sorted(tokens)
print("OAuth 2.0 refresh: new access and refresh tokens")
try:
    handler.refresh_token(
        f"{api}/2/oauth2/token",
        refresh_token=os.environ["X_REFRESH_TOKEN"],
        auth=handler.auth,
        client_id=client_id,
    )
except Exception as spent:  # oauthlib raises InvalidRequestError for a 400
    assert "invalid_request" in repr(spent) or "400" in repr(spent), repr(spent)
    print("OAuth 2.0 refresh with a spent token: refused")
else:
    sys.exit("a spent refresh token was accepted")

me = tweepy.Client(bearer_token=tokens["access_token"]).get_me(user_auth=False)
assert me.data.username, me
print("GET /2/users/me with the user access token:", me.data.username)

# An app on the Free tier: X authenticates its bearer token and refuses
# the v1.1 read with 403 code 453; users/me is served within a 24-hour
# limit per user (the test sets it to one call), then 429.
free = tweepy.API(tweepy.OAuth2AppHandler(os.environ["X_FREE_API_KEY"], os.environ["X_FREE_API_KEY_SECRET"]))
try:
    free.rate_limit_status()
except tweepy.errors.Forbidden as refused:
    assert 453 in refused.api_codes, refused.api_codes
    print("Free tier v1.1 read: 403 with code 453")
else:
    sys.exit("a Free-tier app read rate_limit_status")
free_user = tweepy.Client(bearer_token=os.environ["X_FREE_USER_TOKEN"])
free_user.get_me(user_auth=False)
try:
    free_user.get_me(user_auth=False)
except tweepy.errors.TooManyRequests as limited:
    assert limited.response.headers["x-user-limit-24hour-remaining"] == "0", dict(limited.response.headers)
    print("Free tier users/me past its 24-hour limit: 429")
else:
    sys.exit("the Free tier's 24-hour limit was not enforced")
