package com.example.deploy;

import java.net.http.HttpClient;

public class Deploy {
    private static final String GITLAB_TOKEN = "glpat--aFi7oiiXwyhdWA5Qs5w";
    private static final String DB_PASSWORD = "Jk9iEt0QMk1iNJ";
    private static final String JDBC_URL =
        "jdbc:mysql://db.deploy.internal:3306/deploy?user=deployer&password=i9oYrzobLwA2xrbXAFmn";
    private static final String TWILIO_API_KEY = "SK4633862f894dcc943a2805f3f66c4b75";

    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newHttpClient();
        System.out.println("deploying with " + client);
    }
}
