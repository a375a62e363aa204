package com.example.auth;

public class TokenService {
    private final String secret;
    private final PasswordEncoder passwordEncoder;

    public TokenService(@Value("${jwt.secret}") String secret, PasswordEncoder passwordEncoder) {
        this.secret = secret;
        this.passwordEncoder = passwordEncoder;
    }

    public String issue(User user) {
        String token = Jwts.builder().setSubject(user.getId()).signWith(key(secret)).compact();
        return token;
    }

    public boolean check(String password, String hash) {
        return passwordEncoder.matches(password, hash);
    }
}
