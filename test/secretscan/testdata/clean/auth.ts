import type { Request, Response } from "express";

export function requireAuth(req: Request, res: Response, next: () => void) {
  const token = req.headers.authorization;
  const apiKey = req.get("x-api-key");
  if (!token && !apiKey) {
    res.status(401).json({ error: "missing token" });
    return;
  }
  next();
}

export const dbConfig = {
  host: process.env.DB_HOST,
  password: process.env.DB_PASSWORD,
  secret: config.secret,
};

export const dsn = `postgres://app:${process.env.DB_PASSWORD}@db:5432/app`;
const curlExample = 'curl -H "Authorization: Bearer $TOKEN" https://api.example.com/v1/me';
const template = `password: ${DB_PASSWORD}`;
