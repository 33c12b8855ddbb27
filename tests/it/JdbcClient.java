// A JDBC client on bright's Postgres door (Debian's libpostgresql-jdbc-java, the driver
// JDBC-based BI tools ship), for the end-to-end tests. Run as a single source file:
//
//     java -cp postgresql.jar JdbcClient.java PORT USER PASSWORD SQL PARAM
//
// Prints what a BI tool asks on connect (the schemas, the tables of `lake` and the columns
// of `beds`, from DatabaseMetaData) and then the rows of SQL, run six times as a prepared
// statement with PARAM bound to its one `?` (the driver prepares it on the server from the
// fifth), one comma-separated line each.
import java.sql.*;
import java.util.*;

public class JdbcClient {
    public static void main(String[] args) throws SQLException {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/bright?sslmode=disable";
        try (Connection c = DriverManager.getConnection(url, args[1], args[2])) {
            DatabaseMetaData md = c.getMetaData();
            List<String> schemas = new ArrayList<>();
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
            }
            System.out.println("schemas: " + String.join(",", schemas));
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, "lake", "%", new String[] {"TABLE"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            System.out.println("tables: " + String.join(",", tables));
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = md.getColumns(null, "lake", "beds", "%")) {
                while (rs.next()) columns.add(rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME"));
            }
            System.out.println("columns: " + String.join(",", columns));
            try (PreparedStatement ps = c.prepareStatement(args[3])) {
                ps.setString(1, args[4]);
                for (int run = 1; run <= 6; run++) {
                    try (ResultSet rs = ps.executeQuery()) {
                        int n = rs.getMetaData().getColumnCount();
                        while (rs.next()) {
                            if (run < 6) continue;
                            List<String> values = new ArrayList<>();
                            for (int i = 1; i <= n; i++) {
                                String v = rs.getString(i);
                                values.add(v == null ? "" : v);
                            }
                            System.out.println(String.join(",", values));
                        }
                    }
                }
            }
        }
    }
}
