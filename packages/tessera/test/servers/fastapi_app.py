"""A FastAPI backend as FastAPI users write it (issue 15): the OAuth2 password form, JWT access
tokens and rotating refresh tokens. Started by test/backends.test.ts with Debian's /usr/bin/python3
on 127.0.0.1, port 0; prints `PORT <n>` once it listens, and stops with the test.

- POST /token        OAuth2PasswordRequestForm (username, password, form-encoded)
                     -> {access_token, refresh_token, token_type: "bearer"}; 401 {"detail"}; 422 {"detail": [...]}
- POST /refresh      JSON {"refresh_token"} -> a new pair; the old refresh token is spent (reuse -> 401, the family revoked)
- POST /logout       JSON {"refresh_token"} with the bearer token -> 204; the refresh token is dead
- GET  /users/me     bearer -> the user
- GET  /items        bearer -> the user's items
- POST /__advance    test hook: moves the server's clock forward (access tokens expire on the server)
- GET  /__stats      test hook: what the server has seen
"""

import secrets
import socket
import sys
import time

import jwt
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Response, status
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel

SECRET = secrets.token_hex(32)
ACCESS_TTL = 900
USERS = {"ada": {"username": "ada", "full_name": "Ada Lovelace", "email": "ada@example.test", "password": "correct horse"}}

app = FastAPI()
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")
clock = {"offset": 0.0}
# refresh token -> {"username", "family", "spent"}; a family dies when one of its tokens is reused.
refresh_tokens: dict = {}
dead_families: set = set()
stats = {"token": 0, "refresh": 0, "refresh_refused": 0, "logout": 0, "me": 0, "items": 0, "items_401": 0}


def now() -> float:
    return time.time() + clock["offset"]


def issue(username: str, family: str) -> dict:
    t = int(now())
    access = jwt.encode({"sub": username, "iat": t, "exp": t + ACCESS_TTL}, SECRET, algorithm="HS256")
    refresh = secrets.token_urlsafe(32)
    refresh_tokens[refresh] = {"username": username, "family": family, "spent": False}
    return {"access_token": access, "refresh_token": refresh, "token_type": "bearer"}


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def current_user(token: str = Depends(oauth2_scheme)) -> dict:
    try:
        # Time is checked below on the server's clock (which the tests move), not by PyJWT on the system's.
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})
    except jwt.PyJWTError:
        raise unauthorized("Could not validate credentials")
    if claims["exp"] <= now():
        raise unauthorized("Token expired")
    return USERS[claims["sub"]]


class RefreshRequest(BaseModel):
    refresh_token: str


class Advance(BaseModel):
    seconds: float


@app.post("/token")
def login(form: OAuth2PasswordRequestForm = Depends()):
    stats["token"] += 1
    user = USERS.get(form.username)
    if not user or user["password"] != form.password:
        raise unauthorized("Incorrect username or password")
    return issue(user["username"], secrets.token_hex(8))


@app.post("/refresh")
def refresh(body: RefreshRequest):
    stats["refresh"] += 1
    entry = refresh_tokens.get(body.refresh_token)
    if not entry or entry["family"] in dead_families:
        stats["refresh_refused"] += 1
        raise unauthorized("Invalid refresh token")
    if entry["spent"]:
        dead_families.add(entry["family"])  # reuse: someone else holds a copy
        stats["refresh_refused"] += 1
        raise unauthorized("Refresh token reused")
    entry["spent"] = True
    return issue(entry["username"], entry["family"])


@app.post("/logout", status_code=204)
def logout(body: RefreshRequest, user: dict = Depends(current_user)):
    stats["logout"] += 1
    entry = refresh_tokens.get(body.refresh_token)
    if not entry or entry["username"] != user["username"]:
        raise HTTPException(status_code=400, detail="Unknown refresh token")
    dead_families.add(entry["family"])
    return Response(status_code=204)


@app.get("/users/me")
def me(user: dict = Depends(current_user)):
    stats["me"] += 1
    return {k: v for k, v in user.items() if k != "password"}


@app.get("/items")
def items(token: str = Depends(oauth2_scheme)):
    try:
        user = current_user(token)
    except HTTPException:
        stats["items_401"] += 1
        raise
    stats["items"] += 1
    return [{"id": 1, "owner": user["username"]}]


@app.post("/__advance")
def advance(body: Advance):
    clock["offset"] += body.seconds
    return {"offset": clock["offset"]}


@app.get("/__stats")
def get_stats():
    return stats


if __name__ == "__main__":
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until uvicorn serves them
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.run(sockets=[sock])
    sys.exit(0)
