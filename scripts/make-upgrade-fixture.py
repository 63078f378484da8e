#!/usr/bin/env python3
"""Writes tests/fixtures/v0.1.0/: a data dir and a backup file made by a given latchkey binary, with one of each
record (users, apps, tokens, a provider with a sealed secret, a link, TOTP) and manifest.json saying how to use them.

The upgrade test opens them with the current code: records written by an older release must keep working.
Run with the binary of the release the fixture stands for:
    scripts/make-upgrade-fixture.py target/debug/latchkey tests/fixtures/v0.1.0
"""
import base64, hashlib, html, hmac, json, os, re, shutil, signal, struct, subprocess, sys, time
import requests

BIN, OUT = sys.argv[1], sys.argv[2]
ADMIN_PW = "fixture-admin-password"
STACK = {"project": "0d6f1c52-5a3e-4b8f-9f59-0b1d2e3f4a5b", "server": "fixture-stack-server-key-0123456789abcdef",
         "admin": "fixture-stack-admin-key-0123456789abcdef"}
REDIRECT = "http://127.0.0.1:9999/cb"
CHILDREN = []

def totp(secret_b32, t=None):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    step = int((t or time.time()) // 30)
    h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)

def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    data = os.path.join(OUT, "data")
    os.makedirs(data)
    cfg = os.path.join(OUT, "latchkey.toml")
    with open(cfg, "w") as f:
        f.write('[tokens]\naccess_ttl_secs = 315360000\nrefresh_ttl_secs = 315360000\n'
                '[login]\ntoken_ttl_days = 3650\n')
    env = dict(os.environ, LATCHKEY_ADMIN_PASSWORD=ADMIN_PW, LATCHKEY_LOG="warn",
               LATCHKEY_STACK_PROJECT_ID=STACK["project"], LATCHKEY_STACK_SERVER_KEY=STACK["server"],
               LATCHKEY_STACK_ADMIN_KEY=STACK["admin"])
    p = subprocess.Popen([BIN, "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--data-dir", data],
                         env=env, stdout=subprocess.PIPE, text=True)
    CHILDREN.append(p)
    url = None
    for line in p.stdout:
        if line.startswith("listening on "):
            url = line.split()[-1]
            break
    assert url, "server did not start"
    m = {"made_by": subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.strip(),
         "made_at_ms": int(time.time() * 1000), "admin": {"username": "admin", "password": ADMIN_PW},
         "stack": STACK, "redirect_uri": REDIRECT}
    s = requests.Session()

    def ok(r):
        print(r.request.method, r.request.url.split("?")[0], r.status_code, flush=True)
        assert r.status_code in (200, 201), (r.status_code, r.text)
        return r.json() if r.text else None

    login = ok(s.post(url + "/api/v1/login", json={"user": "admin", "password": ADMIN_PW}))["data"]
    H = {"X-User-Id": login["userId"], "X-Auth-Token": login["authToken"]}
    TFA = dict(H, **{"x-2fa-method": "password", "x-2fa-code": ADMIN_PW})
    m["admin"]["id"] = login["userId"]
    m["admin"]["login_token"] = login["authToken"]

    users = {}
    for name in ["alice", "bob"]:
        u = ok(s.post(url + "/api/v1/users.create", headers=H,
                      json={"username": name, "email": f"{name}@example.com", "password": f"{name}-password",
                            "name": name.title()}))["user"]
        users[name] = {"id": u["_id"], "password": f"{name}-password", "email": f"{name}@example.com"}
    m["users"] = users

    app = ok(s.post(url + "/api/v1/oauth-apps.create", headers=H, json={
        "name": "Fixture App", "redirectUri": REDIRECT, "active": True, "skipConsent": True,
        "grantTypes": ["authorization_code", "refresh_token", "client_credentials"]}))["application"]
    pub = ok(s.post(url + "/api/v1/oauth-apps.create", headers=H, json={
        "name": "Fixture Public", "redirectUri": REDIRECT, "active": True, "clientType": "public"}))["application"]
    m["apps"] = {"confidential": {"id": app["_id"], "client_id": app["clientId"], "secret": app["clientSecret"]},
                 "public": {"id": pub["_id"], "client_id": pub["clientId"]}}
    auth = (app["clientId"], app["clientSecret"])
    cc = ok(s.post(url + "/oauth/token", auth=auth, data={"grant_type": "client_credentials"}))

    # The code flow as alice through the real sign-in form (PKCE S256).
    verifier = "fixture-verifier-" + "x" * 40
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    b = requests.Session()
    q = {"response_type": "code", "client_id": app["clientId"], "redirect_uri": REDIRECT,
         "scope": "openid profile email offline_access", "state": "s", "code_challenge": challenge,
         "code_challenge_method": "S256"}
    page = b.get(url + "/oauth/authorize", params=q).text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    form = {k: html.unescape(v) for k, v in form.items()}
    form.update(username="alice", password=users["alice"]["password"])
    r = b.post(url + "/login", data=form, allow_redirects=False)
    assert r.status_code == 303, r.text
    r = b.get(url + r.headers["location"], allow_redirects=False)
    assert r.status_code == 303, (r.status_code, r.text[:500])
    code = re.search(r"[?&]code=([^&]+)", r.headers["location"])
    assert code, r.headers["location"]
    code = code.group(1)
    tok = ok(s.post(url + "/oauth/token", auth=auth, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}))
    m["tokens"] = {"client_credentials": cc["access_token"], "alice_access": tok["access_token"],
                   "alice_refresh": tok["refresh_token"]}

    # A custom provider with a sealed secret, enabled.
    ok(s.post(url + "/api/v1/settings.addCustomOAuth", headers=TFA, json={"name": "Fixtureidp"}))
    for k, v in [("-url", "http://127.0.0.1:1"), ("-id", "fixture-upstream-client"),
                 ("-secret", "fixture-upstream-secret"), ("", True)]:
        ok(s.post(url + "/api/v1/settings/Accounts_OAuth_Custom-Fixtureidp" + k, headers=TFA, json={"value": v}))
    m["provider"] = {"service": "fixtureidp", "client_id": "fixture-upstream-client",
                     "secret": "fixture-upstream-secret"}

    # A Stack link of alice through it.
    SH = {"X-Stack-Project-Id": STACK["project"], "X-Stack-Access-Type": "server",
          "X-Stack-Secret-Server-Key": STACK["server"]}
    link = ok(s.post(url + "/api/v1/oauth-providers", headers=SH, json={
        "user_id": users["alice"]["id"], "provider_config_id": "fixtureidp", "email": "alice@idp.example",
        "allow_sign_in": True, "allow_connected_accounts": True, "account_id": "alice-upstream-1"}))
    m["link"] = {"id": link["id"], "user_id": users["alice"]["id"], "account_id": "alice-upstream-1"}

    # TOTP for bob, confirmed, with backup codes.
    bl = ok(s.post(url + "/api/v1/login", json={"user": "bob", "password": users["bob"]["password"]}))["data"]
    BH = {"X-User-Id": bl["userId"], "X-Auth-Token": bl["authToken"], "x-2fa-method": "password",
          "x-2fa-code": users["bob"]["password"]}
    e = ok(s.post(url + "/api/v1/users.2fa.enableTOTP", headers=BH, json={}))
    codes = ok(s.post(url + "/api/v1/users.2fa.validateTempToken", headers=BH, json={"code": totp(e["secret"])}))
    m["users"]["bob"].update(totp_secret=e["secret"], backup_codes=codes["codes"], login_token=bl["authToken"])

    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 0
    CHILDREN.remove(p)
    out = subprocess.run([BIN, "backup", "--config", cfg, "--data-dir", data, "--out",
                          os.path.join(OUT, "backup.jsonl")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(m, f, indent=2)
    print("wrote", OUT)

try:
    main()
finally:
    for child in list(CHILDREN):
        child.kill()
