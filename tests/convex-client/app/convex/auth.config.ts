// The JWKS comes from a deployment environment variable (`npx convex env set`), as
// Convex apps read their providers' settings.
export default {
  providers: [
    {
      type: "customJwt",
      issuer: "https://kiln.test",
      jwks: process.env.KILN_TEST_JWKS!,
      algorithm: "RS256",
      applicationID: "kiln-cli-app",
    },
  ],
};
