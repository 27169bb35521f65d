/** The page served at `/` until a demo page is configured with `staticDir`. */
export const HOME_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Tessera reference token server</title></head>
<body>
<h1>Tessera reference token server is up</h1>
<ul>
<li>POST /auth/register { email, password, name? }</li>
<li>POST /auth/login { email, password }</li>
<li>POST /auth/refresh { refresh_token } (or the cookie)</li>
<li>POST /auth/logout { refresh_token } (or the cookie)</li>
<li>GET /auth/me (Bearer)</li>
<li>POST /auth/forgot-password { email }</li>
<li>POST /auth/reset-password { token, password }</li>
<li>POST /auth/change-password (Bearer) { current_password, new_password }</li>
<li>GET /.well-known/jwks.json</li>
<li>GET /api/data, POST /api/echo (Bearer)</li>
<li>POST /__faults, GET /__stats, POST /__stats/reset (only with faults enabled)</li>
</ul>
</body>
</html>
`;
